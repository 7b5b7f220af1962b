"""Operations surface: health and readiness, request ids, Prometheus metrics (one process),
X-Accel-Redirect blob offload and proxy header trust, over the Flask test client.

Under real nginx and gunicorn (multiprocess metrics, Range through nginx) these
are covered by tests/e2e/test_deploy_nginx.py.
"""
from __future__ import annotations

import re

import pytest
from flask import request

from tests.support.oci_client import push_blob, sha256_digest
from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.servers import free_port

NAME = "ops/app"


def make_app(settings, **sections):
    data = {"storage": {"root": settings.storage.root},
            "redis": {"url": settings.redis.url, "key_prefix": settings.redis.key_prefix}}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return create_app(load_settings(data=data, environ={}))


def samples(client) -> dict[str, float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    found = {}
    for line in resp.get_data(as_text=True).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_healthz_and_readyz(client):
    resp = client.get("/healthz")
    assert (resp.status_code, resp.json) == (200, {"status": "ok"})
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json == {"status": "ready", "checks": {"redis": "ok", "storage": "ok", "index": "ok"}}
    assert resp.headers["Cache-Control"] == "no-store"
    assert client.head("/healthz").status_code == 200


def test_readyz_names_an_unreachable_redis(settings):
    make_app(settings)  # the storage root exists (a new one needs the index to be asked: services/root.py)
    app = make_app(settings, redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["status"] == "unavailable" and resp.json["failed"] == ["redis"]
    assert resp.json["checks"]["redis"].startswith("unreachable: ")
    assert resp.json["checks"]["storage"] == "ok"
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_names_unwritable_storage(app, client):
    tmp = app.extensions["registry"].storage.layout.tmp
    tmp.rmdir()
    tmp.write_text("not a folder")  # new files cannot be made there, even by root
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json["failed"] == ["storage"]
    assert resp.json["checks"]["storage"].startswith("not writable: ")


def test_request_id_is_echoed_or_made(client):
    assert client.get("/v2/", headers={"X-Request-ID": "abc-123.x:y"}).headers["X-Request-ID"] == "abc-123.x:y"
    made = client.get("/v2/").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    for bad in ("has space", "x" * 129, "<script>"):
        got = client.get("/v2/", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert got != bad and re.fullmatch(r"[0-9a-f]{32}", got)
    # Also on errors, including those raised before any view runs (a bad name).
    resp = client.get("/v2/BAD/tags/list", headers={"X-Request-ID": "rid-err"})
    assert resp.status_code == 400 and resp.headers["X-Request-ID"] == "rid-err"


def test_metrics_count_routes_statuses_and_bytes(client):
    digest = push_blob(client, NAME, b"x" * 1000)
    client.get(f"/v2/{NAME}/blobs/{digest}")
    client.head(f"/v2/{NAME}/blobs/{digest}")
    client.get(f"/v2/{NAME}/blobs/{sha256_digest(b'missing')}")
    client.get("/v2/BAD/tags/list")
    client.get("/nowhere")
    client.post(f"/v2/{NAME}/blobs/uploads/")  # one session left open
    got = samples(client)
    assert got['registry_http_requests_total{method="GET",route="v2.blobs.get_blob",status="200"}'] == 1
    assert got['registry_http_requests_total{method="HEAD",route="v2.blobs.get_blob",status="200"}'] == 1
    assert got['registry_http_requests_total{method="GET",route="v2.blobs.get_blob",status="404"}'] == 1
    assert got['registry_http_requests_total{method="GET",route="v2.listing.list_tags",status="400"}'] == 1
    assert got['registry_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert got['registry_http_response_body_bytes_total{route="v2.blobs.get_blob",sent_by="app"}'] >= 1000
    assert got['registry_http_request_body_bytes_total{route="v2.uploads.finish_upload"}'] == 1000
    assert got['registry_http_request_duration_seconds_count{method="GET",route="v2.blobs.get_blob"}'] == 2
    assert got["registry_upload_sessions_open"] == 1
    assert got["registry_http_requests_in_flight"] == 1  # the scrape itself


def test_metrics_disabled(settings):
    client = make_app(settings, metrics={"enabled": False}).test_client()
    assert client.get("/metrics").status_code == 404
    digest = push_blob(client, NAME, b"still works")
    assert client.get(f"/v2/{NAME}/blobs/{digest}", buffered=True).get_data() == b"still works"
    assert client.get("/readyz").status_code == 200


def test_x_accel_redirect_is_computed_from_the_digest(settings):
    client = make_app(settings, server={"x_accel_prefix": "/_blobs"}).test_client()
    data = b"offloaded blob"
    digest = push_blob(client, NAME, data)
    hex_ = digest.split(":", 1)[1]

    resp = client.get(f"/v2/{NAME}/blobs/{digest}")
    assert resp.status_code == 200 and resp.get_data() == b""
    assert resp.headers["X-Accel-Redirect"] == f"/_blobs/sha256/{hex_[:2]}/{hex_}"
    assert resp.headers["Docker-Content-Digest"] == digest and resp.headers["ETag"] == f'"{digest}"'
    # Range is left to nginx (it reads the client's header), but refused here when unsatisfiable.
    ranged = client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": "bytes=2-5"})
    assert ranged.status_code == 200 and "Content-Range" not in ranged.headers
    assert ranged.headers["X-Accel-Redirect"] == resp.headers["X-Accel-Redirect"]
    bad = client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": "bytes=999-"})
    assert bad.status_code == 416 and "X-Accel-Redirect" not in bad.headers
    # HEAD never redirects: the app knows the length.
    head = client.head(f"/v2/{NAME}/blobs/{digest}")
    assert "X-Accel-Redirect" not in head.headers and head.headers["Content-Length"] == str(len(data))
    # Unknown blobs, other repositories and malformed digests never reach nginx.
    for path in (f"/v2/{NAME}/blobs/{sha256_digest(b'nope')}", f"/v2/other/repo/blobs/{digest}",
                 f"/v2/{NAME}/blobs/sha256:..%2F..%2Fetc%2Fpasswd", f"/v2/{NAME}/blobs/sha256:{'A' * 64}"):
        denied = client.get(path)
        assert denied.status_code in (400, 404) and "X-Accel-Redirect" not in denied.headers, path
    got = samples(client)
    assert got['registry_http_response_body_bytes_total{route="v2.blobs.get_blob",sent_by="nginx"}'] == len(data) + 4


@pytest.mark.parametrize("hops, expected", [(0, "127.0.0.1"), (1, "198.51.100.7")])
def test_forwarded_headers_are_trusted_per_setting(settings, hops, expected):
    app = make_app(settings, server={"trusted_proxies": hops})
    seen = {}

    @app.after_request
    def record(resp):
        seen.update(addr=request.remote_addr, scheme=request.scheme)
        return resp

    app.test_client().get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers={
        "X-Forwarded-For": "203.0.113.1, 198.51.100.7", "X-Forwarded-Proto": "https"})
    assert seen == {"addr": expected, "scheme": "https" if hops else "http"}


@pytest.mark.parametrize("remote, forwarded, config, details", [
    ("127.0.0.1", None, {}, True), ("::1", None, {}, True), ("203.0.113.7", None, {}, False),
    ("127.0.0.1", "203.0.113.7", {}, False),  # a proxy the registry was not told about
    ("203.0.113.7", None, {"readyz_details": "everyone"}, True),
    ("127.0.0.1", None, {"readyz_details": "nobody"}, False),
])
def test_readyz_details_only_for_the_host_unless_configured(settings, remote, forwarded, config, details):
    make_app(settings)  # the storage root exists (a new one needs the index to be asked: services/root.py)
    app = make_app(settings, redis={"url": f"redis://127.0.0.1:{free_port()}/0"}, server=config)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    resp = app.test_client().get("/readyz", environ_base={"REMOTE_ADDR": remote}, headers=headers)
    assert resp.status_code == 503
    if details:
        assert resp.json["failed"] == ["redis"] and "127.0.0.1" in resp.json["checks"]["redis"], resp.json
    else:
        assert resp.json == {"status": "unavailable"}
        assert b"127.0.0.1" not in resp.data and b"redis" not in resp.data


def test_readyz_details_behind_a_trusted_proxy_follow_the_client_address(settings):
    app = make_app(settings, server={"trusted_proxies": 1})
    client = app.test_client()
    outside = client.get("/readyz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert (outside.status_code, outside.json) == (200, {"status": "ready"})
    local = client.get("/readyz", headers={"X-Forwarded-For": "127.0.0.1"})
    assert local.json == {"status": "ready", "checks": {"redis": "ok", "storage": "ok", "index": "ok"}}
