"""The update feed: ``GET``/``POST /v2/_regext/updates`` (docs/updates.md).

Not repository-scoped (like ``_catalog``): the filter names repositories.
Access control plugs in through ``flask.g.regext_may_pull``, a callable
``name -> bool`` saying whether the caller may pull a repository; events
of other repositories are left out. Unset, every repository is visible.
A long-poll that finds nothing waits in this worker (services/feed_wait.py)
or, behind nginx with ``feed.wait_offload``, is handed to the waiter
process with ``X-Accel-Redirect`` and holds no thread here.
"""
from __future__ import annotations

import time

import orjson
from flask import Blueprint, current_app, g, request

from registry_ext.api.http import Response, query_int, registry
from registry_ext.auth.gate import repository_filter
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import repo_filter
from registry_ext.oci.repo_filter import RepoFilter, RepoFilterError
from registry_ext.services import feed_page
from registry_ext.services.feed import Page, allow_all
from registry_ext.services.feed_codec import sign_token
from registry_ext.services.feed_wait import WaitHub

bp = Blueprint("feed", __name__)
HUB = "registry_ext.feed_hub"
MAX_HOPS = 3            # waiter -> worker -> waiter round trips of one long-poll
# A filter bigger than this travels to the waiter as a stored watch list: the hand-off is a response
# header nginx must hold in its proxy_buffer_size (4 KiB by default), and so is the waiter's answer.
INLINE_SPEC_BYTES = 512
_POST_KEYS = {"repositories", "prefix", "glob"}


def may_pull():
    """The caller's pull permission as ``name -> bool`` (access control's filter; without auth: all)."""
    return g.get("regext_may_pull") or repository_filter() or allow_all


@bp.route("/_regext/updates", methods=["GET", "POST"])
def updates():
    settings = current_app.config["SETTINGS"].feed
    if not settings.enabled:
        raise RegistryError(ErrorCode.UNSUPPORTED, status=404, message="the update feed is disabled")
    feed = registry().feed
    flt, watch = _posted_filter(settings) if request.method == "POST" else _query_filter(settings)
    cursor = request.args.get("cursor") or None
    recent = query_int("recent")
    if cursor is None:
        page = feed.start(flt, min(recent or 0, settings.recent_per_repo), may_pull())
        return answer(page, watch)
    if recent:
        raise _bad("recent", "recent applies only to a request without a cursor")
    asked = query_int("n")
    n = max(1, min(100 if asked is None else asked, settings.page_max))
    page = feed.after(flt, cursor, n, may_pull())
    wait = _wait(settings)
    if page.events or page.more or wait == 0:
        return answer(page, watch)
    if settings.wait_offload and (query_int("_hop") or 0) < MAX_HOPS:
        return _hand_off(settings, flt, watch, page, n, wait)
    return _wait_here(settings, flt, watch, page, n, wait)


def answer(page: Page, watch: str | None = None) -> Response:
    """The page as JSON with its Link and ETag (304 when If-None-Match names it)."""
    args = list(request.args.items(multi=True))
    if watch is not None and request.method == "POST":
        args.append(("watch", watch))
    data = feed_page.body(page.events, page.next, page.more, watch if request.method == "POST" else None)
    link = feed_page.link(args, page.next)
    resp = Response(data, content_type="application/json")
    resp.headers["Link"] = link
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.set_etag(feed_page.etag(data, link))
    resp.make_conditional(request)  # in place (it returns the same response)
    return resp


def _wait(settings) -> int:
    """Seconds to wait: ``wait`` capped at feed.wait_max_seconds, and by ``_until`` (epoch seconds,
    set on a long-poll the waiter sends back: the time left of the client's wait)."""
    wait = min(query_int("wait") or 0, settings.wait_max_seconds)
    until = query_int("_until")
    return wait if until is None else max(0, min(wait, until - int(time.time())))


def _query_filter(settings) -> tuple[RepoFilter, str | None]:
    args = request.args
    watch = args.get("watch") or None
    names = args.getlist("repository")
    if len(names) > settings.max_repositories:
        raise _bad("repository", f"at most {settings.max_repositories} repositories per request "
                                 f"(got {len(names)}): POST them once as a watch list, or use prefix or glob")
    if watch is not None:
        if names or args.get("prefix") or args.get("glob"):
            raise _bad("watch", "watch replaces repository, prefix and glob: send one or the other")
        return registry().feed.get_watch(watch), watch
    try:
        return repo_filter.build(names or None, args.get("prefix"), args.get("glob"), settings.max_repositories), None
    except RepoFilterError as exc:
        raise _bad(exc.parameter, str(exc)) from None


def _posted_filter(settings) -> tuple[RepoFilter, str]:
    """A watch list from the JSON body ``{"repositories": [...], "prefix": ..., "glob": ...}``, stored."""
    limit = settings.max_repositories * 260 + 4096
    if (request.content_length or 0) > limit:
        raise _bad("body", f"body larger than {limit} bytes")
    raw = request.stream.read(limit + 1)
    try:
        doc = orjson.loads(raw) if len(raw) <= limit else None
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or set(doc) - _POST_KEYS:
        raise _bad("body", 'body must be JSON {"repositories": [...], "prefix": "...", "glob": "..."}')
    names, prefix, glob = doc.get("repositories"), doc.get("prefix"), doc.get("glob")
    if not (names is None or isinstance(names, list)) or not all(v is None or isinstance(v, str)
                                                                 for v in (prefix, glob)):
        raise _bad("body", "repositories must be a list of names, prefix and glob strings")
    try:
        flt = repo_filter.build(names, prefix, glob, settings.max_repositories)
    except RepoFilterError as exc:
        raise _bad(exc.parameter, str(exc)) from None
    return flt, registry().feed.put_watch(flt)


def _wait_here(settings, flt: RepoFilter, watch, page: Page, n: int, wait: int) -> Response:
    """Wait in this worker (bounded: an over-full worker answers at once with Retry-After)."""
    hub = current_app.extensions.get(HUB)
    if hub is None:
        hub = current_app.extensions.setdefault(HUB, WaitHub(registry().index.feed, settings.wait_threads))
    feed, deadline = registry().feed, time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        outcome = hub.wait(flt, page.position.id, remaining)
        if outcome == "busy":
            resp = answer(page, watch)
            resp.headers["Retry-After"] = str(min(wait, 10))
            return resp
        if outcome == "timeout":
            break
        page = feed.after(flt, page.next, n, may_pull())
        if page.events or page.more:
            break
    return answer(page, watch)


def _hand_off(settings, flt: RepoFilter, watch, page: Page, n: int, wait: int) -> Response:
    """Answer with X-Accel-Redirect to the waiter: nginx holds the client, the waiter the wait."""
    query = [[k, v] for k, v in request.args.items(multi=True) if k in feed_page.LINK_PARAMS]
    if request.method == "POST":
        query.append(["watch", watch])
    stored = watch
    if stored is None and len(orjson.dumps(flt.spec())) > INLINE_SPEC_BYTES:
        # a long list in the query: the waiter's answer links (and a resume asks) with a watch id instead
        stored = registry().feed.put_watch(flt)
        query = [[k, v] for k, v in query if k not in ("repository", "prefix", "glob")] + [["watch", stored]]
    doc = {"f": {"watch": stored} if stored else flt.spec(), "c": page.next,
           "p": [page.position.epoch, page.position.id, page.position.n], "n": n,
           "d": time.time() + wait, "m": "direct" if may_pull() is allow_all else "resume",
           "q": query, "h": (query_int("_hop") or 0) + 1}
    token = sign_token(registry().feed.identity, doc, wait + 60)
    resp = Response(b"", status=200)
    resp.headers["X-Accel-Redirect"] = f"{settings.wait_offload}/?t={token}"
    return resp


def _bad(parameter: str, message: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"parameter": parameter}, message=message)
