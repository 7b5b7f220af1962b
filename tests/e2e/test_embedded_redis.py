"""``registry-ext serve`` without ``--redis-url``: it runs its own redis-server
with persistence under the data dir, and takes it down on SIGTERM."""
from __future__ import annotations

import json
import time

import pytest

from tests.support.e2e_oci import (CONFIG_V1, LAYER_TGZ, MANIFEST_V1, describe, digest_of, expect,
                     fresh, push_blob, push_manifest, random_bytes)
from tests.support.e2e_server import descendants, pid_alive, processes_mentioning

pytestmark = pytest.mark.e2e


def embedded_redis_processes(server) -> dict[int, str]:
    found = {pid: cmd for pid, cmd in descendants(server.pid).items() if "redis-server" in cmd}
    found.update(processes_mentioning(str(server.data_dir), name="redis-server"))
    found.update(processes_mentioning(str(server.workdir), name="redis-server"))
    return found


def test_embedded_redis_persists_and_stops_with_server(embedded_registry):
    server = embedded_registry
    repo = "e2e/persist"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = random_bytes(70_000, seed=7)
    config_digest = push_blob(server.url, repo, config)
    layer_digest = push_blob(server.url, repo, layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_V1,
        "config": {"mediaType": CONFIG_V1, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": LAYER_TGZ, "digest": layer_digest, "size": len(layer)}],
    }).encode()
    manifest_digest = digest_of(manifest)
    push_manifest(server.url, repo, "v1", manifest)

    redis_procs = embedded_redis_processes(server)
    assert redis_procs, (
        f"serve without --redis-url should run its own redis-server; descendants of "
        f"serve (pid {server.pid}): {descendants(server.pid)}")

    code = server.stop()
    assert code == 0, f"serve exited with {code} on SIGTERM\n{server.output()}"
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in redis_procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = {p: c for p, c in redis_procs.items() if pid_alive(p)}
    assert not survivors, f"embedded redis-server outlived `serve` after SIGTERM: {survivors}"

    data_files = sorted(str(p.relative_to(server.data_dir)) for p in server.data_dir.rglob("*")
                        if p.is_file())
    server.start()

    got = expect(fresh("GET", f"{server.url}/v2/{repo}/manifests/v1",
                       headers={"Accept": MANIFEST_V1}), 200,
                 f"manifest after restart (data dir files: {data_files[:40]}): ")
    assert got.content == manifest
    assert got.headers.get("Docker-Content-Digest") == manifest_digest, describe(got)
    by_digest = expect(fresh("HEAD", f"{server.url}/v2/{repo}/manifests/{manifest_digest}",
                             headers={"Accept": MANIFEST_V1}), 200)
    assert by_digest.headers.get("Content-Length") == str(len(manifest)), describe(by_digest)

    tags = expect(fresh("GET", f"{server.url}/v2/{repo}/tags/list"), 200).json()
    assert tags["name"] == repo and "v1" in tags["tags"], tags
    for digest, body in ((config_digest, config), (layer_digest, layer)):
        blob = expect(fresh("GET", f"{server.url}/v2/{repo}/blobs/{digest}"), 200)
        assert blob.content == body

    assert embedded_redis_processes(server), "no embedded redis-server after the second start"
