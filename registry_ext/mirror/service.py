"""One mirror-diff comparison of a local repository with a configured remote's, bounded and shared.

Used by the API (api/mirror_diff.py) and the web UI's comparison page. The remote is looked up by
name in ``[mirror] remotes``: a URL is never taken from a request. Each worker runs at most
``mirror.max_comparisons`` at once; a request identical to a running one waits for its answer;
beyond, 429 at once (mirror/flight.py). Answers are JSON bytes, reused for ``mirror.cache_seconds``.
"""
from __future__ import annotations

import time

import orjson

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.mirror.flight import Busy, FlightGate


def compare(registry, settings, gate: FlightGate, remote_name: str, name: str, remote_repo: str,
            untagged: bool) -> bytes:
    """The report of ``name`` here vs ``remote_repo`` on the remote ``remote_name``, as JSON bytes."""
    remote = settings.mirror.remotes.get(remote_name)
    if remote is None:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "remote"},
                            message="remote must name a remote configured in [mirror] remotes")
    budget = float(remote.get("timeout", 30))
    page = settings.limits.page_max
    try:
        return gate.get((remote_name, name, remote_repo, untagged),
                        lambda: orjson.dumps(_run(registry, remote_name, remote, name, remote_repo, untagged,
                                                  page, budget)),
                        cache_seconds=settings.mirror.cache_seconds, budget=budget)
    except Busy as exc:
        raise RegistryError(ErrorCode.TOOMANYREQUESTS, {"reason": exc.reason},
                            message="too many mirror comparisons in progress, retry later",
                            headers={"Retry-After": str(exc.retry_after)}) from None


def _run(registry, remote_name: str, remote: dict, name: str, remote_repo: str, untagged: bool, page: int,
         budget: float) -> dict:
    # imported on the first comparison: the HTTP client (requests, urllib3) is not held by every worker
    # of a registry that never compares (issue #11, item 2)
    from registry_ext.mirror.engine import compare as compare_sides
    from registry_ext.mirror.remote import RemoteClient, normalize_url
    from registry_ext.mirror.sides import LocalSide, RemoteSide

    deadline = time.monotonic() + budget
    client = RemoteClient(normalize_url(remote["url"]), username=remote.get("username") or None,
                          password=remote.get("password") or None, realm=remote.get("realm") or None,
                          timeout=budget, retries=1, max_wait=min(budget, 10.0), concurrency=4,
                          deadline=deadline)
    local = LocalSide(registry, page=page, name="local")
    side = RemoteSide(client, page=page, deadline=deadline)
    side.name = remote_name
    return compare_sides(local, side, [(name, remote_repo)], untagged=untagged).to_dict()
