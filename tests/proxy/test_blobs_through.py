"""Blobs through the mirror against real upstreams (docker-registry): streamed while stored by the fill
(proxy/blobfill.py), verified, then served from the cache with the upstream stopped."""
from __future__ import annotations

import pytest

from registry_ext.proxy.blobfill import FillAborted
from tests.support.mirror_upstreams import mirror_app, REPO, Front, start_upstreams
from tests.support.oci_client import sha256_digest

FAST = {"timeout": 5, "max_retries": 0}


def mirror(settings, **upstreams):
    app = mirror_app(settings, upstreams)
    return app.test_client()


def test_a_blob_is_fetched_once_stored_and_served_with_the_upstream_stopped(settings):
    upstream = start_upstreams(1, prefix="blob")[0]
    layer, config = upstream.image.layer, upstream.image.config
    front = Front(upstream.url)
    try:
        client = mirror(settings, bl={"hosts": ["bl.example"], "urls": [front.url], **FAST})
        resp = client.get(f"/v2/{REPO}/blobs/{sha256_digest(layer)}?ns=bl.example")
        assert resp.status_code == 200 and resp.data == layer
        assert resp.headers["Docker-Content-Digest"] == sha256_digest(layer)
        assert resp.headers["OCI-Namespace"] == "bl.example"
        resp = client.get(f"/v2/bl.example/{REPO}/blobs/{sha256_digest(config)}")
        assert resp.status_code == 200 and resp.data == config
        fetched = [path for method, path in front.seen if method == "GET" and "/blobs/" in path]
        assert len(fetched) == 2
    finally:
        front.stop()
        upstream.server.stop()
    for _ in range(2):
        resp = client.get(f"/v2/{REPO}/blobs/{sha256_digest(layer)}?ns=bl.example")
        assert resp.status_code == 200 and resp.data == layer
    assert client.get(f"/v2/bl/{REPO}/blobs/{sha256_digest(layer)}").data == layer


def test_a_blob_the_upstream_does_not_have_is_404_blob_unknown(settings):
    upstream = start_upstreams(1, prefix="nob")[0]
    try:
        client = mirror(settings, nb={"hosts": ["nb.example"], "urls": [upstream.url], **FAST})
        resp = client.get(f"/v2/{REPO}/blobs/sha256:{'2' * 64}?ns=nb.example")
        assert resp.status_code == 404 and resp.json["errors"][0]["code"] == "BLOB_UNKNOWN"
    finally:
        upstream.server.stop()


def test_an_unreachable_upstream_is_503_with_retry_after(settings):
    upstream = start_upstreams(1, prefix="down")[0]
    upstream.server.stop()
    client = mirror(settings, dn={"hosts": ["dn.example"], "urls": [upstream.url], **FAST})
    resp = client.get(f"/v2/{REPO}/blobs/{sha256_digest(upstream.image.layer)}?ns=dn.example")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert resp.json["errors"][0]["code"] == "UNSUPPORTED"


def test_a_limited_upstream_is_429_with_its_retry_after(settings):
    upstream = start_upstreams(1, prefix="lim")[0]
    front = Front(upstream.url)
    front.mode, front.retry_after = "429", "17"
    try:
        client = mirror(settings, lm={"hosts": ["lm.example"], "urls": [front.url], **FAST})
        resp = client.get(f"/v2/{REPO}/blobs/{sha256_digest(upstream.image.layer)}?ns=lm.example")
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "17"
    finally:
        front.stop()
        upstream.server.stop()


def test_a_blob_whose_bytes_do_not_match_is_cut_and_never_stored(settings):
    upstream = start_upstreams(1, prefix="liar")[0]
    front = Front(upstream.url)
    front.mode = "corrupt-blobs"
    layer = upstream.image.layer
    try:
        client = mirror(settings, lb={"hosts": ["lb.example"], "urls": [front.url], **FAST})
        with pytest.raises(FillAborted):
            client.get(f"/v2/{REPO}/blobs/{sha256_digest(layer)}?ns=lb.example")
        assert client.head(f"/v2/lb/{REPO}/blobs/{sha256_digest(layer)}").status_code == 404
        front.mode = "pass"
        resp = client.get(f"/v2/{REPO}/blobs/{sha256_digest(layer)}?ns=lb.example")
        assert resp.status_code == 200 and resp.data == layer
    finally:
        front.stop()
        upstream.server.stop()
