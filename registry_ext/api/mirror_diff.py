"""``GET /v2/<name>/_regext/mirror-diff?remote=<configured remote>``: this repository vs a remote's.

The remote is looked up by name in ``[mirror] remotes``; a URL is never
taken from the request. ``remote_repo`` names the repository on the remote
(default: the same name); ``untagged=true`` also compares untagged
manifests. The answer is the report as JSON (docs/mirror-diff.md), 200 even
when the remote failed (``status: "error"``, with the message). The whole
comparison is bounded by the remote's ``timeout``; answers are reused for
``mirror.cache_seconds`` per (remote, repository, options) within a worker.
"""
from __future__ import annotations

import threading
import time

import orjson
from flask import Blueprint, current_app, request

from registry_ext.api.ext import EXT
from registry_ext.api.ext_params import bad
from registry_ext.api.http import Response, conditional, registry
from registry_ext.mirror.engine import compare
from registry_ext.mirror.remote import RemoteClient, normalize_url
from registry_ext.mirror.sides import LocalSide, RemoteSide
from registry_ext.oci.reference import validate_name

bp = Blueprint("mirror_diff", __name__)
_lock = threading.Lock()


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
    key = (remote_name, name, remote_repo, untagged)
    body = _cached(key, settings.mirror.cache_seconds)
    if body is None:
        body = orjson.dumps(_compare(name, remote_repo, remote, untagged, settings.limits.page_max))
        _store(key, body, settings.mirror.cache_seconds)
    return conditional(Response(body, content_type="application/json"))


def _compare(name: str, remote_repo: str, remote: dict, untagged: bool, page: int) -> dict:
    timeout = float(remote.get("timeout", 30))
    client = RemoteClient(normalize_url(remote["url"]), username=remote.get("username") or None,
                          password=remote.get("password") or None, realm=remote.get("realm") or None,
                          timeout=timeout, retries=1, max_wait=min(timeout, 10.0), concurrency=4)
    local = LocalSide(registry(), page=page, name="local")
    side = RemoteSide(client, page=page, deadline=time.monotonic() + timeout)
    side.name = request.args.get("remote", "")
    report = compare(local, side, [(name, remote_repo)], untagged=untagged)
    return report.to_dict()


def _cache() -> dict:
    return current_app.extensions.setdefault("mirror_diff_cache", {})


def _cached(key, ttl: int) -> bytes | None:
    with _lock:
        hit = _cache().get(key)
    return hit[1] if hit and hit[0] > time.monotonic() else None


def _store(key, body: bytes, ttl: int) -> None:
    if ttl <= 0:
        return
    now = time.monotonic()
    with _lock:
        cache = _cache()
        for stale in [k for k, (expires, _b) in cache.items() if expires <= now]:
            del cache[stale]
        cache[key] = (now + ttl, body)
