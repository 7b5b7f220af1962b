"""``GET /v2/<name>/_regext/mirror-diff?remote=<configured remote>``: this repository vs a remote's.

The remote is looked up by name in ``[mirror] remotes``; a URL is never
taken from the request. ``remote_repo`` names the repository on the remote
(default: the same name); ``untagged=true`` also compares untagged
manifests. The answer is the report as JSON (docs/mirror-diff.md), 200 even
when the remote failed (``status: "error"``, with the message).

A comparison may wait on a remote that never answers, so it is bounded in
time and in number: the whole comparison ends by the remote's ``timeout``
(one deadline for every request, retry and page, mirror/remote.py); each
worker runs at most ``mirror.max_comparisons`` at once, a request identical
to a running one (same remote, repositories, options) waits for its answer
instead of starting another, at most ``mirror.max_comparisons`` of them at
once; anything beyond answers 429 TOOMANYREQUESTS with Retry-After at once
(mirror/flight.py). Answers are reused for ``mirror.cache_seconds``.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request

from registry_ext.api.ext import EXT
from registry_ext.api.ext_params import bad
from registry_ext.api.http import Response, conditional, registry
from registry_ext.mirror import service
from registry_ext.mirror.flight import FlightGate
from registry_ext.oci.reference import validate_name

bp = Blueprint("mirror_diff", __name__)


@bp.get(f"/<repo:name>/{EXT}/mirror-diff")
def mirror_diff(name: str):
    settings = current_app.config["SETTINGS"]
    remote_name = request.args.get("remote", "")
    if remote_name not in service.remote_names(settings):
        raise bad("remote", service.UNKNOWN_REMOTE)
    remote_repo = request.args.get("remote_repo") or service.default_remote_repo(settings, remote_name, name)
    validate_name(remote_repo)
    untagged = request.args.get("untagged", "false") == "true"
    body = service.compare(registry(), settings, gate(), remote_name, name, remote_repo, untagged)
    return conditional(Response(body, content_type="application/json"))


def gate() -> FlightGate:
    """This worker's gate (made with the app: the extensions dict is set up before requests)."""
    return current_app.extensions["mirror_diff_gate"]


def init_app(app) -> None:
    """One FlightGate per app (each worker process builds its own app)."""
    slots = app.config["SETTINGS"].mirror.max_comparisons
    app.extensions["mirror_diff_gate"] = FlightGate(slots=slots, waiters=slots)
