"""The deployment from deploy/ under real nginx, gunicorn and redis-server on loopback ports.

One stack for the module (``e2e_deploy.DeployStack``): nginx with the shipped
site config, gunicorn started as the systemd unit starts it (2 gthread
workers), blob downloads offloaded with X-Accel-Redirect. Tests run in file
order; the last one stops Redis.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import (MANIFEST_V1, OciLayout, absolute, describe, digest_of, expect, fresh, layout_blob,
                     push_blob, random_bytes, reachable_digests, read_layout, start_upload, with_digest)
from tests.support.e2e_server import pid_alive
from tests.support.e2e_skopeo import Skopeo

pytestmark = pytest.mark.e2e

MIB = 1 << 20
GIB = 1 << 30
CHUNK = 64 * MIB


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DeployStack(tmp_path_factory.mktemp("deploy")).start()
    yield stack
    stack.stop()


def gib_chunks(seed: int = 11):
    """1 GiB in 64 MiB chunks, made on the fly: a random MiB with its index in front, repeated."""
    base = random.Random(seed).randbytes(MIB)
    for chunk in range(GIB // CHUNK):
        first = chunk * (CHUNK // MIB)
        yield b"".join((first + i).to_bytes(8, "big") + base[8:] for i in range(CHUNK // MIB))


def metrics(stack) -> dict[str, float]:
    """``/metrics`` through nginx as {sample line without value: value}."""
    resp = expect(fresh("GET", f"{stack.url}/metrics"), 200, "GET /metrics: ")
    assert resp.headers["Content-Type"].startswith("text/plain"), describe(resp)
    samples = {}
    for line in resp.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_health_ready_and_request_ids(stack):
    resp = expect(fresh("GET", f"{stack.url}/healthz"), 200)
    assert resp.json() == {"status": "ok"}
    resp = expect(fresh("GET", f"{stack.url}/readyz"), 200)
    assert resp.json() == {"status": "ready", "checks": {"redis": "ok", "storage": "ok", "index": "ok"}}

    # The client's id goes through nginx to the app and back, and into both access logs.
    resp = expect(fresh("GET", f"{stack.url}/v2/", headers={"X-Request-ID": "e2e-hello-1"}), 200)
    assert resp.headers.get("X-Request-ID") == "e2e-hello-1", describe(resp)
    assert "pid=<" in stack.wait_log_line(stack.gunicorn_log, "rid=e2e-hello-1")
    assert 'request="GET /v2/ HTTP/1.1" status=200' in stack.wait_log_line(stack.nginx_log, "rid=e2e-hello-1")
    # A malformed one is replaced by nginx's $request_id.
    resp = expect(fresh("GET", f"{stack.url}/v2/", headers={"X-Request-ID": "bad id <script>"}), 200)
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers.get("X-Request-ID", "")), describe(resp)

    # The web UI is routed to the app, with its security headers.
    resp = expect(fresh("GET", f"{stack.url}/ui/"), 200)
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8", describe(resp)
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'"), describe(resp)
    assert "<h1>Repositories</h1>" in resp.text
    css = expect(fresh("GET", f"{stack.url}/ui/static/ui.css"), 200)
    assert css.headers["Content-Type"].startswith("text/css"), describe(css)

    assert fresh("GET", f"{stack.url}/_blobs/sha256/00/" + "0" * 64).status_code == 404  # internal only
    assert fresh("GET", f"{stack.url}/elsewhere").status_code == 404


def test_one_gib_blob_pushed_in_chunks_and_pulled_through_x_accel(stack):
    repo = "e2e/deploy/big"
    session = requests.Session()
    location = start_upload(stack.url, repo)
    hasher, offset = hashlib.sha256(), 0
    for chunk in gib_chunks():
        hasher.update(chunk)
        resp = session.patch(location, data=chunk, timeout=300, headers={
            "Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        expect(resp, 202, f"PATCH at {offset}: ")
        offset += len(chunk)
        assert resp.headers.get("Range") == f"0-{offset - 1}", describe(resp)
        location = absolute(stack.url, resp.headers["Location"])
    digest = "sha256:" + hasher.hexdigest()
    resp = session.put(with_digest(location, digest), headers={"Content-Length": "0"}, timeout=300)
    expect(resp, 201, "PUT ?digest=: ")
    url = f"{stack.url}/v2/{repo}/blobs/{digest}"

    head = expect(fresh("HEAD", url, headers={"Accept-Encoding": "gzip"}), 200)
    assert head.headers.get("Content-Length") == str(GIB), describe(head)
    assert head.headers.get("Docker-Content-Digest") == digest, describe(head)

    pulled, size = hashlib.sha256(), 0
    with session.get(url, stream=True, timeout=300, headers={"X-Request-ID": "e2e-pull-1gib"}) as resp:
        expect(resp, 200, "GET 1 GiB blob: ")
        assert resp.headers.get("Content-Length") == str(GIB), describe(resp)
        assert resp.headers.get("Docker-Content-Digest") == digest, describe(resp)
        assert resp.headers.get("ETag") == f'"{digest}"', describe(resp)
        assert resp.headers.get("X-Request-ID") == "e2e-pull-1gib", describe(resp)
        assert "X-Accel-Redirect" not in resp.headers, describe(resp)
        for piece in resp.iter_content(MIB):
            pulled.update(piece)
            size += len(piece)
    assert (size, "sha256:" + pulled.hexdigest()) == (GIB, digest)

    # gunicorn answered with an empty body; nginx sent the gibibyte from the internal location.
    app_line = stack.wait_log_line(stack.gunicorn_log, "rid=e2e-pull-1gib")
    assert " status=200 bytes=0 " in app_line, app_line
    nginx_line = stack.wait_log_line(stack.nginx_log, "rid=e2e-pull-1gib")
    assert f" status=200 bytes={GIB} " in nginx_line, nginx_line
    assert f" uri=/_blobs/sha256/{digest[7:9]}/{digest[7:]} " in nginx_line, nginx_line
    session.close()


def test_range_and_head_through_nginx(stack):
    repo = "e2e/deploy/range"
    size = 3 * MIB + 5
    data = random_bytes(size, seed=21)
    digest = push_blob(stack.url, repo, data)
    url = f"{stack.url}/v2/{repo}/blobs/{digest}"

    for header, first, last in [("bytes=0-99", 0, 99), (f"bytes={size - 100}-", size - 100, size - 1),
                                ("bytes=-100", size - 100, size - 1), ("bytes=1048576-2097151", MIB, 2 * MIB - 1),
                                (f"bytes=10-{size + 500}", 10, size - 1)]:
        resp = expect(fresh("GET", url, headers={"Range": header}), 206, f"Range {header}: ")
        assert resp.headers.get("Content-Range") == f"bytes {first}-{last}/{size}", describe(resp)
        assert resp.headers.get("Content-Length") == str(last - first + 1), describe(resp)
        assert resp.headers.get("Docker-Content-Digest") == digest, describe(resp)
        assert resp.content == data[first:last + 1], f"wrong bytes for {header}"

    # Several ranges: the whole blob (as the app answers without nginx).
    resp = expect(fresh("GET", url, headers={"Range": "bytes=0-9,20-29"}), 200)
    assert resp.content == data
    # Unsatisfiable: the app's 416 in the OCI envelope, before any redirect.
    resp = expect(fresh("GET", url, headers={"Range": f"bytes={size}-"}), 416)
    assert resp.headers.get("Content-Range") == f"bytes */{size}", describe(resp)
    assert resp.json()["errors"][0]["code"] == "UNSUPPORTED"
    resp = expect(fresh("HEAD", url, headers={"Range": "bytes=0-99"}), 206)
    assert resp.headers.get("Content-Length") == "100", describe(resp)

    # HEAD keeps Content-Length through nginx even where gzip would apply (JSON listings).
    config = push_blob(stack.url, repo, b"{}")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "layers": [],
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config, "size": 2}}).encode()
    for i in range(60):
        expect(fresh("PUT", f"{stack.url}/v2/{repo}/manifests/release-2026.11.{i:04d}-build", data=manifest,
                     headers={"Content-Type": MANIFEST_V1}), 201)
    tags_url = f"{stack.url}/v2/{repo}/tags/list"
    plain = expect(fresh("GET", tags_url, headers={"Accept-Encoding": "identity"}), 200)
    zipped = expect(fresh("GET", tags_url, headers={"Accept-Encoding": "gzip"}), 200)
    assert zipped.headers.get("Content-Encoding") == "gzip", describe(zipped)  # gzip is on for GET
    for target, length in ((tags_url, len(plain.content)),
                           (f"{stack.url}/v2/{repo}/manifests/release-2026.11.0001-build", len(manifest)),
                           (url, size)):
        head = expect(fresh("HEAD", target, headers={"Accept-Encoding": "gzip", "Accept": MANIFEST_V1}), 200)
        assert head.headers.get("Content-Length") == str(length), describe(head)
        assert "Content-Encoding" not in head.headers, describe(head)


def test_concurrent_pushes_and_pulls(stack):
    repo = "e2e/deploy/busy"
    shared = random_bytes(24 * MIB, seed=31)
    shared_digest = push_blob(stack.url, repo, shared)

    def push(i: int) -> str:
        data = random_bytes(8 * MIB + i, seed=100 + i)
        if i % 2:
            return push_blob(stack.url, repo, data)
        location = start_upload(stack.url, repo)  # chunked transfer encoding, streamed through nginx
        resp = fresh("PATCH", location, data=(data[j:j + MIB] for j in range(0, len(data), MIB)),
                     headers={"Content-Type": "application/octet-stream"})
        expect(resp, 202, "streamed PATCH: ")
        expect(fresh("PUT", with_digest(absolute(stack.url, resp.headers["Location"]), digest_of(data))), 201)
        return digest_of(data)

    def pull(_: int) -> str:
        with requests.get(f"{stack.url}/v2/{repo}/blobs/{shared_digest}", stream=True, timeout=120) as resp:
            expect(resp, 200)
            hasher = hashlib.sha256()
            for piece in resp.iter_content(MIB):
                hasher.update(piece)
        return "sha256:" + hasher.hexdigest()

    with ThreadPoolExecutor(12) as pool:
        pushes = [pool.submit(push, i) for i in range(6)]
        pulls = [pool.submit(pull, i) for i in range(12)]
        pushed = [f.result(timeout=300) for f in pushes]
        assert [f.result(timeout=300) for f in pulls] == [shared_digest] * 12
    for i, digest in enumerate(pushed):
        assert digest == digest_of(random_bytes(8 * MIB + i, seed=100 + i))
        resp = expect(fresh("GET", f"{stack.url}/v2/{repo}/blobs/{digest}"), 200)
        assert digest_of(resp.content) == digest


def test_skopeo_copy_through_nginx(stack, tmp_path):
    skopeo = Skopeo(tmp_path / "skopeo-home", stack)
    src, dst = tmp_path / "src", tmp_path / "dst"
    layout = OciLayout(src)
    image = layout.add_image(layers=[{"bin/tool": random_bytes(2 * MIB, seed=41)}, {"etc/motd": b"hi\n"}])
    layout.tag(image["descriptor"], "v1")
    ref = f"docker://{stack.host}/e2e/deploy/skopeo:v1"

    skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{src}:v1", ref)
    skopeo.run("copy", "--preserve-digests", "--src-tls-verify=false", ref, f"oci:{dst}:v1")

    entry = read_layout(dst, "v1")
    assert entry["digest"] == image["descriptor"]["digest"], entry
    for digest in reachable_digests(src, image["descriptor"]):
        assert layout_blob(dst, digest) == layout_blob(src, digest), f"{digest} differs"
    layer = image["layers"][0]["digest"]
    stack.wait_log_line(stack.nginx_log, f"uri=/_blobs/sha256/{layer[7:9]}/{layer[7:]} ")  # via X-Accel


def test_metrics_merge_every_worker(stack):
    repo = "e2e/deploy/metrics"
    data = random_bytes(MIB, seed=51)
    digest = push_blob(stack.url, repo, data)
    for _ in range(20):  # fresh connections: both workers get some
        expect(fresh("GET", f"{stack.url}/v2/{repo}/blobs/{digest}"), 200)
    expect(fresh("POST", f"{stack.url}/v2/{repo}/blobs/uploads/"), 202)  # left open

    samples = metrics(stack)
    assert samples['registry_http_requests_total{method="GET",route="v2.blobs.get_blob",status="200"}'] >= 20
    assert samples['registry_http_response_body_bytes_total{route="v2.blobs.get_blob",sent_by="nginx"}'] >= 20 * MIB
    assert samples['registry_http_request_body_bytes_total{route="v2.uploads.finish_upload"}'] >= MIB
    assert samples['registry_http_request_duration_seconds_count{method="GET",route="v2.blobs.get_blob"}'] >= 20
    assert samples["registry_upload_sessions_open"] >= 1
    assert samples["registry_http_requests_in_flight"] >= 1  # this very request

    # Both workers served requests, each wrote its own files, and /metrics merged them.
    pids = {int(p) for p in re.findall(r"pid=<(\d+)>", stack.gunicorn_log.read_text())}
    assert len(pids) >= 2, pids
    files = {p.name for p in Path(stack.metrics_dir).iterdir()}
    assert {f"counter_{pid}.db" for pid in pids} <= files, (pids, files)


def test_graceful_reload_keeps_serving(stack):
    key = 'registry_http_requests_total{method="GET",route="v2.base",status="200"}'
    for _ in range(3):
        expect(fresh("GET", f"{stack.url}/v2/"), 200)
    before = metrics(stack)[key]
    gunicorn = stack.services["gunicorn"]
    booted = gunicorn.log.read_text().count("Booting worker with pid")
    old = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", gunicorn.log.read_text())}
    gunicorn.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = gunicorn.log.read_text()
        if text.count("Booting worker with pid") >= booted + stack.workers and not any(map(pid_alive, old)):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"SIGHUP did not replace the workers\n{stack.diagnostics()}")
    assert gunicorn.proc.poll() is None
    for _ in range(6):
        expect(fresh("GET", f"{stack.url}/v2/"), 200)
    assert metrics(stack)[key] >= before + 6, "counters of the old workers must survive a reload"


def test_readyz_names_what_failed(stack):
    stack.services.pop("redis").stop()
    resp = fresh("GET", f"{stack.url}/readyz")
    assert resp.status_code == 503, describe(resp)
    body = resp.json()
    assert body["status"] == "unavailable" and body["failed"] == ["redis"], body
    assert body["checks"]["storage"] == "ok" and body["checks"]["redis"].startswith("unreachable"), body
    expect(fresh("GET", f"{stack.url}/healthz"), 200)  # the process itself is fine
