"""Oversized and hostile requests against the shipped nginx + gunicorn stack (deploy/), on loopback ports.

nginx refuses what is too large (a header line over 8 KiB, a header block
over 32 KiB, a request line over 8 KiB, a non-upload body over 16 MiB) with
the OCI error envelope as JSON, not its HTML pages; what nginx accepts gets
through gunicorn to the app (gunicorn's limits are raised out of nginx's
way); gunicorn's limits hit directly cost no worker; path traversal through
nginx's own decoding and normalising reaches nothing; gunicorn down is a
JSON 503. Tests run in file order (the last one stops gunicorn).
"""
from __future__ import annotations

import json
import re
import socket
import time

import pytest

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import MANIFEST_V1, describe, expect, fresh, push_blob, push_manifest
from tests.support.e2e_raw import get, oci_error, raw_request
from tests.support.e2e_server import pid_alive

pytestmark = pytest.mark.e2e
MIB = 1 << 20
REPO = "e2e/hostile/app"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DeployStack(tmp_path_factory.mktemp("hostile")).start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def image(stack):
    """A config blob and a manifest tagged `latest` in REPO."""
    config = push_blob(stack.url, REPO, b'{"os":"linux","architecture":"amd64"}')
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "layers": [],
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                  "size": 37}}).encode()
    push_manifest(stack.url, REPO, "latest", body)
    return {"config": config, "body": body}


@pytest.mark.parametrize("label, head, status", [
    ("one header line over 8 KiB", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000, 431),
    ("a header block over 32 KiB", b"GET /v2/ HTTP/1.1\r\nHost: x" + b"".join(
        b"\r\nX-Part-%d: " % i + b"b" * 7000 for i in range(6)), 431),
    ("a request line over 8 KiB", b"GET /v2/" + b"a" * 9000 + b"/tags/list HTTP/1.1\r\nHost: x", 414),
    ("a query over 8 KiB", b"GET /v2/_catalog?last=" + b"z" * 9000 + b" HTTP/1.1\r\nHost: x", 414),
    ("not HTTP", b"HELLO THERE", 400),
    ("a bad header name", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header: y", 400),
])
def test_nginx_refuses_oversized_and_malformed_requests_in_the_envelope(stack, label, head, status):
    oci_error(raw_request(stack.port, head), status, source="nginx")


@pytest.mark.parametrize("label, head", [
    ("a raw non-ASCII request target", b"GET /v2/\xef\xbc\x8e\xef\xbc\x8e/x/tags/list HTTP/1.1\r\nHost: x"),
    ("a control character in a header value", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b"),
    ("a two-letter method", b"AB /v2/ HTTP/1.1\r\nHost: x"),
])
def test_what_only_gunicorn_refuses_is_refused_in_the_envelope_too(stack, label, head):
    """nginx passes these on; gunicorn refuses them before the app, as JSON (gunicorn_setup.post_worker_init)."""
    oci_error(raw_request(stack.port, head), 400, "UNSUPPORTED", source="gunicorn")


TLS_HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)) + b"\n\x00\x00"


@pytest.mark.parametrize("label, head, status", [
    ("TRACE", b"TRACE /v2/ HTTP/1.1\r\nHost: x", 405),
    ("HTTP/2.0 on an HTTP/1 request line", b"GET /v2/ HTTP/2.0\r\nHost: x", 505),
    ("a Transfer-Encoding other than chunked", b"POST /v2/e2e/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
                                               b"Transfer-Encoding: gzip", 501),
    ("Content-Length with Transfer-Encoding", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                              b"Transfer-Encoding: chunked", 400),
    ("a TLS ClientHello on the plain-HTTP port", TLS_HELLO, 400),
])
def test_nginx_refuses_methods_versions_and_encodings_in_the_envelope(stack, label, head, status):
    oci_error(raw_request(stack.port, head), status, "UNSUPPORTED", source="nginx")


def test_metrics_from_another_address_is_a_json_403(stack):
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10, source_address=("127.0.0.2", 0)) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 ") and b"Content-Type: application/json" in head, data
    assert json.loads(body)["errors"][0] == {"code": "DENIED", "message": "requested access to the resource is denied",
                                             "detail": {"source": "nginx"}}


def test_a_failed_precondition_on_a_blob_nginx_sends_is_a_json_412(stack, image):
    resp = get(stack.port, f"/v2/{REPO}/blobs/{image['config']}", extra=b'\r\nIf-Match: "other"')
    oci_error(resp, 412, "UNSUPPORTED", source="nginx")


@pytest.mark.parametrize("target", ["/v2", "/v2/", "/v2?x=1"])
def test_the_base_without_slash_is_answered_not_redirected_to_the_clients_host(stack, target):
    for method in ("GET", "HEAD"):
        resp = raw_request(stack.port, f"{method} {target} HTTP/1.1\r\nHost: evil.example:8443".encode())
        assert resp.status == 200 and "location" not in resp.headers, str(resp)
        assert "evil" not in json.dumps(resp.headers) + resp.body.decode(), str(resp)
        if method == "GET":
            assert resp.json() == {}


def test_nginx_answers_unknown_and_internal_paths_in_the_envelope(stack):
    for target in ("/elsewhere", "/_blobs/sha256/00/" + "0" * 64, "/_oci_errors/400", "/v2/../etc/passwd"):
        oci_error(get(stack.port, target), 404, "UNSUPPORTED", source="nginx")


def test_body_over_nginx_limit_is_413_size_invalid(stack):
    resp = fresh("PUT", f"{stack.url}/v2/{REPO}/manifests/huge", data=b"{" + b" " * (17 * MIB),
                 headers={"Content-Type": MANIFEST_V1})
    assert resp.status_code == 413, describe(resp)
    error = resp.json()["errors"][0]
    assert error["code"] == "SIZE_INVALID" and error["detail"]["source"] == "nginx"
    expect(fresh("GET", f"{stack.url}/v2/{REPO}/manifests/huge"), 404)


def test_manifest_over_the_app_limit_is_413_manifest_invalid_and_not_stored(stack, image):
    """Under nginx's 16 MiB but over limits.manifest_max_bytes (4 MiB): the app's own 413."""
    doc = json.loads(image["body"])
    doc["annotations"] = {"padding": "x" * (5 * MIB)}
    resp = fresh("PUT", f"{stack.url}/v2/{REPO}/manifests/padded", data=json.dumps(doc).encode(),
                 headers={"Content-Type": MANIFEST_V1})
    assert resp.status_code == 413, describe(resp)
    error = resp.json()["errors"][0]
    assert error["code"] == "MANIFEST_INVALID" and error["detail"] == {"limit": 4 * MIB}, error
    expect(fresh("GET", f"{stack.url}/v2/{REPO}/manifests/padded"), 404)


@pytest.mark.parametrize("label, target, extra", [
    ("a 6,000-byte query (over gunicorn's default 4094-byte line)", f"/v2/{REPO}/tags/list?ns=" + "q" * 6000, b""),
    ("300 headers (over gunicorn's default 100)", f"/v2/{REPO}/tags/list",
     b"".join(b"\r\nX-Header-%d: v" % i for i in range(300))),
    ("an 8,170-byte X-Forwarded-For that nginx lengthens", f"/v2/{REPO}/tags/list",
     b"\r\nX-Forwarded-For: " + b"1" * 8170),
])
def test_what_nginx_accepts_reaches_the_app(stack, image, label, target, extra):
    resp = get(stack.port, target, extra=extra)
    assert resp.status == 200, str(resp)
    assert resp.json() == {"name": REPO, "tags": ["latest"]}, str(resp)


def worker_pids(stack) -> set[int]:
    return {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", stack.gunicorn_log.read_text())}


def test_gunicorn_limits_hit_directly_do_not_cost_a_worker(stack, image):
    before = worker_pids(stack)
    port = stack.gunicorn_port
    for head in (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000,           # limit_request_field_size
                 b"GET /v2/ HTTP/1.1\r\nHost: x" + b"\r\nX-H: v" * 33000,             # limit_request_fields
                 b"GET /v2/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x",              # limit_request_line
                 b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5"):
        resp = raw_request(port, head)
        assert 400 <= resp.status < 500, str(resp)
        oci_error(resp, resp.status, "UNSUPPORTED", source="gunicorn")
    time.sleep(0.5)
    assert worker_pids(stack) == before and all(pid_alive(p) for p in before), stack.diagnostics()
    for _ in range(10):
        expect(fresh("GET", f"{stack.url}/v2/{REPO}/manifests/latest", headers={"Accept": MANIFEST_V1}), 200)


TRAVERSALS = [
    ("GET", "/v2/../../canary.txt"), ("GET", "/v2/%2e%2e/%2e%2e/canary.txt"),
    ("GET", "/v2/..%2f..%2fcanary.txt/tags/list"), ("GET", "/v2/%2e%2e%2f%2e%2e%2foutside/tags/list"),
    ("GET", "/_blobs/../canary.txt"), ("GET", "/_blobs/..%2f..%2fcanary.txt"), ("GET", "//canary.txt"),
    ("GET", f"/v2/{REPO}/blobs/sha256:..%2f..%2f..%2fcanary.txt"), ("GET", f"/v2/{REPO}/blobs/..%5c..%5ccanary.txt"),
    ("HEAD", f"/v2/{REPO}/manifests/..%2f..%2f..%2f..%2foutside%2flatest"),
    ("PUT", f"/v2/{REPO}/manifests/..%2f..%2f..%2f..%2f..%2f..%2foutside%2fx"),
    ("DELETE", f"/v2/{REPO}/manifests/%2e%2e%2f%2e%2e%2f%2e%2e"),
    ("PATCH", f"/v2/{REPO}/blobs/uploads/..%2f..%2foutside"), ("PUT", f"/v2/{REPO}/blobs/uploads/%2e%2e"),
    ("DELETE", f"/v2/{REPO}/blobs/uploads/..%2f..%2f..%2f..%2frepos"),
    ("GET", f"/v2/{REPO}/blobs/uploads/../../../../canary.txt"),
    ("POST", "/v2/..%2foutside/blobs/uploads/"), ("POST", "/v2/a%00b/blobs/uploads/"),
    ("POST", f"/v2/{REPO}/blobs/uploads/?mount=sha256:{'a' * 64}&from=..%2f..%2foutside"),
    ("POST", f"/v2/{REPO}/blobs/uploads/?digest=sha256:..%2f..%2fcanary.txt"),
    ("GET", "/v2/\xef\xbc\x8e\xef\xbc\x8e/canary.txt/tags/list"), ("GET", f"/v2/{REPO}/_oci/tag-history/..%2f..%2fx"),
    ("GET", "/v2/a\\..\\..\\outside/tags/list"), ("GET", "/v2/%252e%252e%252foutside/tags/list"),
]


def test_path_traversal_through_nginx_reaches_nothing(stack, image):
    outside = stack.dir / "outside"
    outside.mkdir(exist_ok=True)
    secret = "only-in-the-canary-files-7f3a\n"  # error details echo the path, never this
    for path in (stack.dir / "canary.txt", stack.data / "canary.txt", outside / "latest"):
        path.write_text(secret)
    before = {p.relative_to(stack.dir) for p in stack.dir.iterdir()} | set(outside.iterdir())
    for method, target in TRAVERSALS:
        resp = get(stack.port, target, method=method, body=b"canary?" if method in ("PUT", "PATCH") else b"")
        assert 400 <= resp.status < 500, f"{method} {target}: {resp}"
        assert secret.strip().encode() not in resp.body, f"{method} {target}: {resp}"
        if method != "HEAD":
            oci_error(resp, resp.status)
    assert (stack.dir / "canary.txt").read_text() == (stack.data / "canary.txt").read_text() == secret
    assert {p.relative_to(stack.dir) for p in stack.dir.iterdir()} | set(outside.iterdir()) == before


def test_gunicorn_down_is_503_in_the_envelope(stack):
    """Last in the module: it stops gunicorn. nginx's 502 becomes a JSON 503 with Retry-After."""
    stack.services.pop("gunicorn").stop()
    resp = get(stack.port, f"/v2/{REPO}/tags/list")
    oci_error(resp, 503, "UNSUPPORTED", source="nginx")
    assert resp.headers.get("retry-after") == "2", str(resp)
