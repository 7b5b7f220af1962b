"""The minimum upload rate under gunicorn (`registry-ext serve`), with a short window to keep it quick.

limits: 16 KiB per 3 s (about 5.3 KiB/s), a 4 s pause after a cut. An upload sending 16 KiB/s for 8 s (more
than two windows) is never cut and completes; one sending 2 KiB/s is cut with a 408 after about one window,
its unfinished chunk dropped (the session keeps its offset), and its address gets 429 for the pause
while another address uploads; after the pause it may upload again. A body that stops entirely is cut too.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time
import uuid

import pytest

from tests.support.e2e_server import RegistryServer

pytestmark = pytest.mark.e2e
WINDOW, PIECE, PENALTY = 3, 16384, 4


@pytest.fixture(scope="module")
def server(tmp_path_factory, redis_server):
    workdir = tmp_path_factory.mktemp("minrate")
    config = workdir / "registry.toml"
    config.write_text(f"[limits]\nupload_min_rate_bytes = {PIECE}\nupload_min_rate_seconds = {WINDOW}\n"
                      f"upload_slow_penalty_seconds = {PENALTY}\n")
    server = RegistryServer(workdir / "server", redis_url=redis_server, key_prefix=f"rate{uuid.uuid4().hex[:8]}",
                            env={"REGISTRY_EXT_CONFIG": str(config)})
    server.start()
    yield server
    server.close()


def call(server, method: str, path: str, source: str = "127.0.0.1", body: bytes = b""):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    conn.request(method, path, body=body, headers={"Content-Length": str(len(body))})
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def session(server, source: str = "127.0.0.1") -> str:
    resp = call(server, "POST", "/v2/rate/app/blobs/uploads/", source)
    assert resp.status == 202, resp.body
    return resp.getheader("Location")


def trickle(server, path: str, source: str, piece: bytes, every: float, seconds: float) -> tuple[bytes, bytes]:
    """A chunked PATCH sending ``piece`` every ``every`` s for ``seconds`` (or until answered), then ending the
    body; (bytes sent, the raw answer)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30, source_address=(source, 0))
    sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n".encode())
    sent, ends = b"", time.monotonic() + seconds
    sock.settimeout(every)
    answer = b""
    try:
        while time.monotonic() < ends:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += piece
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            break  # answered early
        if not answer:
            sock.sendall(b"0\r\n\r\n")
            sock.settimeout(30)
            answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(5)
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        pass
    sock.close()
    return sent, answer


def test_an_upload_above_the_minimum_rate_is_never_cut(server):
    path = session(server)
    sent, answer = trickle(server, path, "127.0.0.1", b"a" * 4096, every=0.25, seconds=8)
    assert answer.startswith(b"HTTP/1.1 202 ") and f"Range: 0-{len(sent) - 1}".encode() in answer, answer[:400]
    digest = "sha256:" + hashlib.sha256(sent).hexdigest()
    assert call(server, "PUT", f"{path}?digest={digest}").status == 201


def test_a_slow_upload_is_cut_and_its_address_paused(server):
    path = session(server, "127.0.0.6")
    started = time.monotonic()
    sent, answer = trickle(server, path, "127.0.0.6", b"b" * 1024, every=0.5, seconds=20)
    cut_after = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:400]
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["errors"][0]
    assert error["code"] == "BLOB_UPLOAD_INVALID" and error["detail"]["reason"] == "slow body", error
    assert WINDOW - 0.5 < cut_after < WINDOW + 2.5, cut_after
    status = call(server, "GET", path)
    assert status.status == 204 and status.getheader("Range") == "0-0", status.getheaders()  # chunk dropped

    refused = call(server, "POST", "/v2/rate/app/blobs/uploads/", "127.0.0.6")
    assert refused.status == 429 and 1 <= int(refused.getheader("Retry-After")) <= PENALTY, refused.body
    assert json.loads(refused.body)["errors"][0]["detail"]["reason"] == "slow upload"
    assert call(server, "PATCH", path, "127.0.0.6", b"more").status == 429
    assert session(server, "127.0.0.7")  # another address is not paused
    time.sleep(PENALTY + 0.5)
    assert call(server, "PATCH", path, "127.0.0.6", b"after the pause").status == 202


def test_a_body_that_stops_is_cut(server):
    path = session(server, "127.0.0.8")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30, source_address=("127.0.0.8", 0))
    started = time.monotonic()
    sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode() + b"c" * 1000)
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < WINDOW + 2.5, answer[:300]


def test_a_fast_body_is_read_whole_and_verified(server):
    """Bytes already queued are read in pieces larger than the minimum (up to 1 MiB): a 4 MiB body sent at
    once completes with its digest checked."""
    blob = bytes(range(256)) * (4 * 4096)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    path = session(server, "127.0.0.9")
    resp = call(server, "PUT", f"{path}?digest={digest}", "127.0.0.9", blob)
    assert resp.status == 201, resp.body
    assert call(server, "GET", f"/v2/rate/app/blobs/{digest}").body == blob


def test_a_body_that_stops_after_a_burst_is_cut(server):
    """A burst larger than a piece does not buy a longer wait: what has not arrived yet is still held to one
    piece per window."""
    path = session(server, "127.0.0.10")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30, source_address=("127.0.0.10", 0))
    started = time.monotonic()
    sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode() + b"d" * 200_000)
    answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < WINDOW + 2.5, answer[:300]
