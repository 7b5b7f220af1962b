"""One mirror-diff comparison of a local repository with a configured remote's, bounded and shared.

Used by the API (api/mirror_diff.py) and the web UI's comparison page. The remote is looked up by
name in ``[mirror] remotes``, or is an upstream of the pull-through mirror (``[proxy.upstreams]``,
compared with its own first URL, credentials, realm and TLS settings): a URL is never taken from a
request. Each worker runs at most ``mirror.max_comparisons`` at once; a request identical to a running
one waits for its answer; beyond, 429 at once (mirror/flight.py). Answers are JSON bytes, reused for
``mirror.cache_seconds``.
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.mirror.flight import Busy, FlightGate

UNKNOWN_REMOTE = "remote must name a remote configured in [mirror] remotes or an upstream in [proxy.upstreams]"


def remote_names(settings) -> list[str]:
    """What ``remote=`` may name: the mirror-diff remotes and the pull-through upstreams (a name is
    never both: config.py refuses the clash)."""
    return sorted(set(settings.mirror.remotes) | set(settings.proxy.upstreams))


def default_remote_repo(settings, remote_name: str, name: str) -> str:
    """The repository to compare with when the request names none: for an upstream, the name it
    knows (its cache namespace ``<upstream>/`` taken off, ``library/`` added where configured)."""
    if remote_name not in settings.proxy.upstreams:
        return name
    from registry_ext.proxy.config import parse_upstream

    upstream = parse_upstream(remote_name, settings.proxy.upstreams[remote_name])
    head, _, rest = name.partition("/")
    return upstream.upstream_repo(rest if head == remote_name and rest else name)


def compare(registry, settings, gate: FlightGate, remote_name: str, name: str, remote_repo: str,
            untagged: bool) -> bytes:
    """The report of ``name`` here vs ``remote_repo`` on the remote ``remote_name``, as JSON bytes."""
    remote = _remote(settings, remote_name, remote_repo)
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


def _remote(settings, remote_name: str, remote_repo: str) -> dict[str, Any]:
    """The remote's connection settings; an upstream's from its validated table (proxy/config.py).

    Raises:
        RegistryError(UNSUPPORTED): no such remote, or a repository the upstream's rules do not mirror.
    """
    if remote_name in settings.mirror.remotes:
        return dict(settings.mirror.remotes[remote_name])
    if remote_name not in settings.proxy.upstreams:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "remote"}, message=UNKNOWN_REMOTE)
    from registry_ext.proxy.config import parse_upstream

    upstream = parse_upstream(remote_name, settings.proxy.upstreams[remote_name])
    if not upstream.allows(remote_repo):
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "remote_repo"},
                            message=f"{remote_repo} is not mirrored from upstream {remote_name} "
                                    "(its repositories rules)")
    return {"url": upstream.urls[0], "username": upstream.username, "password": upstream.password,
            "realm": upstream.realm, "timeout": min(upstream.timeout, 300.0), "verify": upstream.verify,
            "upstream": upstream.name, "rules": upstream.rules}


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
                          verify=remote.get("verify", True), deadline=deadline)
    local = LocalSide(registry, page=page, name="local")
    side = RemoteSide(client, page=page, deadline=deadline)
    side.name = remote_name
    report = compare_sides(local, side, [(name, remote_repo)], untagged=untagged).to_dict()
    if remote.get("upstream"):
        for repo in report["repositories"]:
            repo["mirror"] = cache_state(registry, remote["upstream"], name, repo, remote["rules"])
    return report


def cache_state(registry, upstream: str, name: str, repo: dict[str, Any], rules) -> dict[str, Any]:
    """The report of a cache against its upstream, said in the mirror's words: ``missing`` (tags the
    upstream has and the cache does not), ``stale`` (tags the upstream moved since the cache last
    synced them: cached and upstream digests, ``synced`` time), ``gone`` (cached tags the upstream no
    longer has). Signature tags count like the others. Upstream tags outside the upstream's content
    rules (``tags``/``versions``) are never mirrored: they are ``not_mirrored``, not missing."""
    from registry_ext.services.tag_listing import rfc3339

    signatures = repo["signatures"]
    missing = [e["tag"] for e in repo["only_b"]] + [s["tag"] for s in signatures if s["status"] == "only_b"]
    gone = [e["tag"] for e in repo["only_a"]] + [s["tag"] for s in signatures if s["status"] == "only_a"]
    moved = [(c["tag"], c["digest_a"], c["digest_b"]) for c in repo["changed"]]
    moved += [(s["tag"], s["digest_a"], s["digest_b"]) for s in signatures if s["status"] == "changed"]
    synced = registry.index.mirror.read(name, [tag for tag, _a, _b in moved])
    stale = [{"tag": tag, "cached": a, "upstream": b, "synced": rfc3339(synced.get(tag))}
             for tag, a, b in sorted(moved)]
    return {"upstream": upstream, "missing": sorted(t for t in missing if rules.allows(t)), "stale": stale,
            "gone": sorted(gone), "not_mirrored": sorted(t for t in missing if not rules.allows(t))}
