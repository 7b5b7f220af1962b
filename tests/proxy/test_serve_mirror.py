"""The mirror in a real server (`registry-ext serve`: gunicorn, 2 workers) over HTTP, two real upstreams.

Each upstream (Debian docker-registry) holds its own ``library/app:latest``; clients pull whole images
through the one mirror, by ``ns`` and by path prefix, several at once, and again with the upstreams
stopped.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json

import pytest
import requests

from bench.peer import start_ours
from tests.support.mirror_upstreams import REPO, start_upstreams


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    upstreams = start_upstreams(2, prefix="srv")
    folder = tmp_path_factory.mktemp("serve-mirror")
    config = folder / "registry.toml"
    lines = ["[proxy]"]
    for i, upstream in enumerate(upstreams):
        lines += [f"[proxy.upstreams.u{i}]", f'hosts = ["u{i}.example"]', f'urls = ["{upstream.url}"]',
                  "timeout = 5", "max_retries = 0", "manifest_ttl = 0"]
    config.write_text("\n".join(lines) + "\n")
    server = start_ours(data_dir=str(folder / "data"), workers=2, extra_args=["--config", str(config)])
    try:
        yield server, upstreams
    finally:
        server.stop()
        for upstream in upstreams:
            upstream.server.stop()


def pull(base: str, name: str, query: str) -> dict[str, bytes]:
    """Manifest, config and layers of ``name``:latest, each checked against its digest."""
    session = requests.Session()
    session.trust_env = False
    resp = session.get(f"{base}/v2/{name}/manifests/latest{query}", timeout=30,
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 200, resp.text
    got = {"manifest": resp.content}
    doc = json.loads(resp.content)
    for descriptor in [doc["config"], *doc["layers"]]:
        blob = session.get(f"{base}/v2/{name}/blobs/{descriptor['digest']}{query}", timeout=30)
        assert blob.status_code == 200, blob.text
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == descriptor["digest"]
        got[descriptor["digest"]] = blob.content
    return got


def expected(upstream) -> dict[str, bytes]:
    image = upstream.image
    return {"manifest": image.manifest, "sha256:" + hashlib.sha256(image.config).hexdigest(): image.config,
            "sha256:" + hashlib.sha256(image.layer).hexdigest(): image.layer}


def test_clients_pull_each_upstreams_image_through_one_server(stack):
    server, upstreams = stack
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(pull, server.url, REPO, f"?ns=u{i % 2}.example") for i in range(4)]
        jobs += [pool.submit(pull, server.url, f"u{i % 2}.example/{REPO}", "") for i in range(4)]
        results = [job.result() for job in jobs]
    for i, got in enumerate(results):
        assert got == expected(upstreams[i % 2])
    for upstream in upstreams:
        upstream.server.stop()
    for i in range(2):
        assert pull(server.url, REPO, f"?ns=u{i}.example") == expected(upstreams[i])
        resp = requests.get(f"{server.url}/v2/{REPO}/manifests/latest?ns=u{i}.example", timeout=30)
        assert resp.headers["X-Regext-Mirror"] == "stale" and resp.headers["OCI-Namespace"] == f"u{i}.example"
