"""The UI's mirror pages: the configured mirror-diff remotes, and one comparison rendered with a chart.

``/ui/mirror`` lists the remotes by name (their URLs and credentials are operator configuration and
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
from registry_ext.api.ui.views import bp, check_pull, page
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.mirror import service
from registry_ext.mirror.render import repo_from_dict, rows
from registry_ext.oci.reference import validate_name

BAR_WIDTH = 320  # px of the longest bar
LABEL_WIDTH = 230  # px before the bars: the longest label fits
CHART_WIDTH = LABEL_WIDTH + BAR_WIDTH + 70  # room for the count after the longest bar
BARS = (("identical", "identical", "same"), ("changed", "changed", "changed"), ("only_a", "only here", "here"),
        ("only_b", "only on the remote", "there"), ("signatures", "signature differences", "sig"),
        ("untagged_only_a", "untagged only here", "here"), ("untagged_only_b", "untagged only on the remote",
                                                            "there"))


@bp.get("/mirror")
def mirror():
    remotes = sorted(current_app.config["SETTINGS"].mirror.remotes)
    return page("mirror.html", remotes=remotes, name=request.args.get("name", ""))


@bp.get("/mirror/diff")
def mirror_diff():
    settings = current_app.config["SETTINGS"]
    name, remote = request.args.get("name", "").strip(), request.args.get("remote", "")
    remote_repo = request.args.get("remote_repo", "").strip() or name
    validate_name(name)
    validate_name(remote_repo)
    check_pull(name)
    if remote not in settings.mirror.remotes:
        raise RegistryError(ErrorCode.UNSUPPORTED, message="choose a remote configured in [mirror] remotes")
    untagged = request.args.get("untagged") == "on"
    report = orjson.loads(service.compare(registry(), settings, gate(), remote, name, remote_repo, untagged))
    repos = [repo_from_dict(r) for r in report["repositories"]]
    return page("mirror_diff.html", name=name, remote=remote, remote_repo=remote_repo, untagged=untagged,
                report=report, repos=repos, rows={r.repo_a: sides_named(rows(r), remote) for r in repos},
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
