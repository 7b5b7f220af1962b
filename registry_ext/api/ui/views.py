"""The web UI under ``/ui/`` (docs/ui.md): server-rendered pages over the listing services.

Access control is checked here, not by auth/gate.py (its rows in
auth/scopes.py are ``open``): the caller comes from the UI's session cookie
(api/ui/session.py), every repository page needs pull permission (a
repository one may not pull is "not found", not revealed), and the
repository list shows only what the caller may pull. Registry errors render
as an HTML page with the error's status. Jinja escapes every value;
``Content-Security-Policy`` allows only this server's own CSS and script.
"""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from markupsafe import Markup

from registry_ext.api.http import registry
from registry_ext.api.ui import session
from registry_ext.auth.core import Throttled, Unauthenticated
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import pagination, repo_filter
from registry_ext.oci.reference import is_valid_tag
from registry_ext.services.browse import Browse

bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static")
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SORTS = {"semver": "version", "updated": "time"}
_GLOB = set("*?")


@bp.after_request
def _headers(resp):
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers.setdefault("Cache-Control", "private, no-cache")
    return resp


@bp.errorhandler(RegistryError)
def _error(exc: RegistryError):
    status = 404 if exc.code in (ErrorCode.NAME_UNKNOWN, ErrorCode.MANIFEST_UNKNOWN) else exc.status
    return page("error.html", status=status, message=exc.message, code=exc.code.name)


@bp.get("/")
def repositories():
    query = request.args.get("q", "").strip()
    if len(query) > repo_filter.PATTERN_MAX:
        raise RegistryError(ErrorCode.UNSUPPORTED, message="the search is too long")
    try:
        flt = repo_filter.build(None, None if _GLOB & set(query) else query,
                                query if _GLOB & set(query) else None)
    except repo_filter.RepoFilterError as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED, message=f"search: {exc}") from None
    auth = session.auth()
    visible = None if auth is None else auth.visible(session.caller())
    rows, next_last = Browse(registry()).repositories(flt, request.args.get("last") or None, visible)
    return page("repositories.html", rows=rows, q=query, next_last=next_last)


@bp.get("/repo/<repo:name>")
def repository(name: str):
    check_pull(name)
    sort = request.args.get("sort", "updated")
    if sort not in SORTS:
        raise RegistryError(ErrorCode.UNSUPPORTED, message="sort must be semver or updated")
    position = _position(sort)
    browse = Browse(registry())
    families, next_position = browse.tags(name, sort, position)
    running = request.args.get("running", "").strip()
    newer = None
    if running:
        if not is_valid_tag(running):
            raise RegistryError(ErrorCode.UNSUPPORTED, message="the version you run is not a valid tag")
        newer = browse.newer(name, running)
    cursor = pagination.encode({"s": sort, "p": list(next_position) if isinstance(next_position, tuple)
                                else next_position}) if next_position is not None else None
    untagged, more = browse.untagged(name, None) if position is None else ([], None)
    return page("repository.html", name=name, families=families, sort=sort, sorts=SORTS, next_cursor=cursor,
                 newer=newer, running=running, untagged=untagged, untagged_more=more)


@bp.get("/repo/<repo:name>/_untagged")
def untagged(name: str):
    check_pull(name)
    found, more = Browse(registry()).untagged(name, request.args.get("cursor") or None)
    return page("untagged.html", name=name, untagged=found, untagged_more=more)


@bp.get("/repo/<repo:name>/_tag/<segment:tag>")
def tag(name: str, tag: str):
    check_pull(name)
    if not is_valid_tag(tag):
        raise RegistryError(ErrorCode.UNSUPPORTED, message="not a valid tag")
    limits = current_app.config["SETTINGS"].limits
    info = Browse(registry()).tag(name, tag, request.args.get("history") or None, limits.scan_max)
    host = request.host
    # Over plain HTTP podman and ctr refuse the registry unless told (docker allows only localhost).
    return page("tag.html", name=name, tag=tag, info=info, host=host, plain_http=request.scheme != "https")


@bp.route("/login", methods=["GET", "POST"])
def login():
    auth = session.auth()
    if auth is None or auth.users is None:
        return page("error.html", status=404, message="this registry has no users to log in as", code="")
    message, status = "", 200
    if request.method == "POST":
        user, password = request.form.get("user", "")[:256], request.form.get("password", "")[:1024]
        if not session.csrf_ok():
            message, status = "The form expired: please try again.", 400
        else:
            try:
                auth.login(user, password, request.remote_addr or "-")
            except Unauthenticated:
                message, status = "Wrong user name or password.", 401
            except Throttled as exc:
                message, status = f"Too many failed logins: retry in {exc.retry_after} s.", 429
            else:
                resp = redirect(url_for("ui.repositories"), code=303)
                session.start_session(resp, user)
                return resp
    cookies: dict[str, str] = {}
    resp = page("login.html", status=status, message=message, csrf=session.csrf_token(cookies))
    session.set_cookies(resp, cookies)
    return resp


@bp.post("/logout")
def logout():
    if not session.csrf_ok():
        return page("error.html", status=400, message="The form expired: please try again.", code="")
    resp = redirect(url_for("ui.repositories"), code=303)
    session.end_session(resp)
    return resp


def check_pull(name: str) -> None:
    """A repository the caller may not pull looks exactly like one that does not exist."""
    if not session.may_pull(name):
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})


def _position(sort: str):
    token = request.args.get("cursor")
    if not token:
        return None
    try:
        payload = pagination.decode(token)
    except pagination.TokenError:
        payload = {}
    position = payload.get("p")
    if payload.get("s") == sort and sort == "semver" and isinstance(position, str) and len(position) <= 1024:
        return position
    if (payload.get("s") == sort and sort == "updated" and isinstance(position, list) and len(position) == 2
            and isinstance(position[0], int) and isinstance(position[1], str) and len(position[1]) <= 256):
        return position[0], position[1]
    raise RegistryError(ErrorCode.UNSUPPORTED, message="the page link is malformed: start from the first page")


@bp.app_template_filter("filesize")
def filesize(value: int | None) -> str:
    """Bytes for people: ``1.4 MB`` (decimal units, as registries' web pages show them)."""
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


@bp.app_template_filter("when")
def when(stamp: str | None) -> Markup:
    """An RFC 3339 time as ``<time>``, shown to the minute in UTC (the full value in ``datetime``)."""
    if not stamp:
        return Markup("–")
    shown = stamp[:16].replace("T", " ") + " UTC" if len(stamp) >= 16 and stamp[10] == "T" else stamp
    return Markup('<time datetime="{}" title="{}">{}</time>').format(stamp, stamp, shown)


def page(template: str, status: int = 200, **values):
    cookies: dict[str, str] = {}
    who = session.caller()
    resp = current_app.make_response((render_template(
        template, user=who.user, auth_on=session.auth() is not None,
        logout_csrf=session.csrf_token(cookies) if who.user else "", **values), status))
    resp.content_type = "text/html; charset=utf-8"
    session.set_cookies(resp, cookies)
    return resp
