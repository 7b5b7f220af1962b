"""The UI's mirror pages: the pull-through mirror's upstreams, the mirror-diff remotes, one comparison.

``/ui/mirror`` shows each configured upstream of the pull-through mirror (services/mirror_status.py:
its hosts, how it has been answering, what its cache holds, every figure bounded per view) and
``/ui/mirror/upstream/<name>`` one page of its cached repositories the caller may pull. With access
control on, anonymous visitors see neither the upstreams' URLs nor their error reasons. It lists the
mirror-diff remotes and the upstreams by name (their URLs and credentials are operator configuration and
are not shown) with a form; ``/ui/mirror/diff`` runs the same bounded, shared comparison as the
mirror-diff API (mirror/service.py: one deadline, at most ``mirror.max_comparisons`` per worker,
429 beyond) for a repository the caller may pull, and shows what differs: counts as a bar chart
(inline SVG sized by attributes, which the page's CSP allows), then a row per difference.
"""
from __future__ import annotations

import orjson
from flask import current_app, request

from registry_ext.api.http import registry
from registry_ext.api.mirror_diff import gate
from registry_ext.api.ui import session
from registry_ext.api.ui.views import bp, check_pull, page
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.mirror import service
from registry_ext.mirror.render import repo_from_dict, rows
from registry_ext.oci.reference import validate_name
from registry_ext.services.mirror_status import MirrorStatus

BAR_WIDTH = 320  # px of the longest bar
LABEL_WIDTH = 230  # px before the bars: the longest label fits
CHART_WIDTH = LABEL_WIDTH + BAR_WIDTH + 70  # room for the count after the longest bar
BARS = (("identical", "identical", "same"), ("changed", "changed", "changed"), ("only_a", "only here", "here"),
        ("only_b", "only on the remote", "there"), ("signatures", "signature differences", "sig"),
        ("untagged_only_a", "untagged only here", "here"), ("untagged_only_b", "untagged only on the remote",
                                                            "there"))


@bp.get("/mirror")
def mirror():
    settings = current_app.config["SETTINGS"]
    upstreams = MirrorStatus(registry()).overview(_upstreams().values(), settings.proxy.default_upstream,
                                                  _visible())
    return page("mirror.html", remotes=service.remote_names(settings), name=request.args.get("name", ""),
                upstreams=upstreams, detailed=_detailed())


@bp.get("/mirror/upstream/<segment:upstream>")
def mirror_upstream(upstream: str):
    configured = _upstreams().get(upstream)
    if configured is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"upstream": upstream[:64]},
                            message="no upstream of the pull-through mirror has this name")
    after = request.args.get("after", "")[:256] or None
    view, rows, next_after = MirrorStatus(registry()).upstream(
        configured, current_app.config["SETTINGS"].proxy.default_upstream, _visible(), after)
    return page("mirror_upstream.html", up=view, rows=rows, next_after=next_after, detailed=_detailed())


def _upstreams() -> dict:
    """The pull-through mirror's upstreams by name (none when ``[proxy]`` names none)."""
    proxy = current_app.extensions.get("proxy")
    return proxy.router.upstreams if proxy is not None else {}


def _visible():
    auth = session.auth()
    return None if auth is None else auth.visible(session.caller())


def _detailed() -> bool:
    """Whether URLs and error reasons are shown: without access control, or to a signed-in user."""
    return session.auth() is None or session.caller().user is not None


@bp.get("/mirror/diff")
def mirror_diff():
    settings = current_app.config["SETTINGS"]
    name, remote = request.args.get("name", "").strip(), request.args.get("remote", "")
    validate_name(name)
    check_pull(name)
    if remote not in service.remote_names(settings):
        raise RegistryError(ErrorCode.UNSUPPORTED, message="choose a remote configured in [mirror] remotes "
                                                           "or an upstream of the mirror")
    remote_repo = request.args.get("remote_repo", "").strip() or service.default_remote_repo(settings, remote, name)
    validate_name(remote_repo)
    untagged = request.args.get("untagged") == "on"
    report = orjson.loads(service.compare(registry(), settings, gate(), remote, name, remote_repo, untagged))
    repos = [repo_from_dict(r) for r in report["repositories"]]
    return page("mirror_diff.html", name=name, remote=remote, remote_repo=remote_repo, untagged=untagged,
                report=report, repos=repos,
                caches={r["repo_a"]: r.get("mirror") for r in report["repositories"]},
                rows={r.repo_a: sides_named(rows(r), remote) for r in repos},
                bars=bars(report["counts"]), label_width=LABEL_WIDTH, chart_width=CHART_WIDTH)


def sides_named(found: list[tuple], remote: str) -> list[tuple]:
    """The report's rows with "A" and "B" said as "here" and "on <remote>"."""
    return [(status.replace(" in A", " here").replace(" in B", f" on {remote}"), *rest) for status, *rest in found]


def bars(counts: dict[str, int]) -> list[dict]:
    """One bar per count, widths proportional to the largest (at least 2 px when not zero)."""
    top = max([counts[key] for key, _, _ in BARS] + [1])
    return [{"label": label, "count": counts[key], "kind": kind, "y": i * 28,
             "width": max(2, round(BAR_WIDTH * counts[key] / top)) if counts[key] else 0}
            for i, (key, label, kind) in enumerate(BARS)]
