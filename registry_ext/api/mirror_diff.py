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

import time

import orjson
from flask import Blueprint, current_app, request

from registry_ext.api.ext import EXT
from registry_ext.api.ext_params import bad
from registry_ext.api.http import Response, conditional, registry
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.mirror.flight import Busy, FlightGate
from registry_ext.oci.reference import validate_name

bp = Blueprint("mirror_diff", __name__)


@bp.get(f"/<repo:name>/{EXT}/mirror-diff")
def mirror_diff(name: str):
    settings = current_app.config["SETTINGS"]
    remote_name = request.args.get("remote", "")
    remote = settings.mirror.remotes.get(remote_name)
    if remote is None:
        raise bad("remote", "remote must name a remote configured in [mirror] remotes")
    remote_repo = request.args.get("remote_repo") or name
    validate_name(remote_repo)
    untagged = request.args.get("untagged", "false") == "true"
    budget = float(remote.get("timeout", 30))
    page = settings.limits.page_max
    try:
        body = _gate().get((remote_name, name, remote_repo, untagged),
                           lambda: orjson.dumps(_compare(name, remote_repo, remote, untagged, page, budget)),
                           cache_seconds=settings.mirror.cache_seconds, budget=budget)
    except Busy as exc:
        raise RegistryError(ErrorCode.TOOMANYREQUESTS, {"reason": exc.reason},
                            message="too many mirror comparisons in progress, retry later",
                            headers={"Retry-After": str(exc.retry_after)}) from None
    return conditional(Response(body, content_type="application/json"))


def _compare(name: str, remote_repo: str, remote: dict, untagged: bool, page: int, budget: float) -> dict:
    # imported on the first comparison: the HTTP client (requests, urllib3) is not held by every worker
    # of a registry that never compares (issue #11, item 2)
    from registry_ext.mirror.engine import compare
    from registry_ext.mirror.remote import RemoteClient, normalize_url
    from registry_ext.mirror.sides import LocalSide, RemoteSide

    deadline = time.monotonic() + budget
    client = RemoteClient(normalize_url(remote["url"]), username=remote.get("username") or None,
                          password=remote.get("password") or None, realm=remote.get("realm") or None,
                          timeout=budget, retries=1, max_wait=min(budget, 10.0), concurrency=4,
                          deadline=deadline)
    local = LocalSide(registry(), page=page, name="local")
    side = RemoteSide(client, page=page, deadline=deadline)
    side.name = request.args.get("remote", "")
    report = compare(local, side, [(name, remote_repo)], untagged=untagged)
    return report.to_dict()


def _gate() -> FlightGate:
    """This worker's gate (made with the app: the extensions dict is set up before requests)."""
    return current_app.extensions["mirror_diff_gate"]


def init_app(app) -> None:
    """One FlightGate per app (each worker process builds its own app)."""
    slots = app.config["SETTINGS"].mirror.max_comparisons
    app.extensions["mirror_diff_gate"] = FlightGate(slots=slots, waiters=slots)
