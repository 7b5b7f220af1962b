"""A few addresses attacking the shipped nginx + gunicorn stack cannot lock a normal client out.

While it runs (bounded: at most ATTACK_SECONDS), the attack is:

- 4,000 connections from 127.0.0.2 that send half a request header and never finish it, replaced as soon
  as nginx closes them (twice what locked everyone out with `worker_connections 1024`);
- 12 chunked upload PATCHes from 127.0.0.3-5 (4 each: the whole site-wide upload cap) trickling one byte
  every 2 s, each re-opened at once when it is answered (a persistent attacker).

A normal client on 127.0.0.1 pulls (manifest and blob) and pushes (a blob through a session, and a
manifest), retrying 429 after Retry-After as registry clients do; both must succeed. The slow uploads are
cut by the app after 20 s (64 KiB per 20 s minimum, 408) and their addresses are then refused uploads
(429) before nginx's slots are taken again; nginx closes the half-sent headers after 10 s.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import (MANIFEST_V1, absolute, describe, digest_of, fresh, push_blob, push_manifest,
                                   start_upload)
from tests.support.e2e_slow import HeaderFlood, SlowUploads

pytestmark = pytest.mark.e2e
REPO = "e2e/attack/app"
HALF_OPEN = 4000
TRICKLE_SOURCES = ["127.0.0.3", "127.0.0.4", "127.0.0.5"] * 4
ATTACK_SECONDS = 50
HEADER_TIMEOUT = 10  # deploy/nginx.conf client_header_timeout
MIN_RATE_WINDOW = 20  # limits.upload_min_rate_seconds


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DeployStack(tmp_path_factory.mktemp("attack")).start()
    yield stack
    stack.stop()


class Trickles:
    """SlowUploads kept at one per source: an answered one is re-opened after 0.5 s."""

    def __init__(self, stack, paths: list[str]):
        self.slow = SlowUploads("127.0.0.1", stack.port, interval=2.0, chunk=b"x")
        self.slots = [[path, source, None] for path, source in zip(paths, TRICKLE_SOURCES)]
        self.answers: list[tuple[int | None, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Trickles":
        for slot in self.slots:
            slot[2] = self.slow.open(slot[0], slot[1])
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for slot in self.slots:
                if slot[2].answered:  # (None, b"") when the server closed without an answer
                    head, _sep, body = slot[2].answer.partition(b"\r\n\r\n")
                    self.answers.append((slot[2].status if _sep else None, body))
                    slot[2].sock.close()
                    try:
                        slot[2] = self.slow.open(slot[0], slot[1])
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.slow.close()


def retrying(method: str, url: str, deadline: float, **kwargs):
    """A request repeated after each 429 (waiting its Retry-After, at most 2 s) until ``deadline``."""
    while True:
        resp = fresh(method, url, timeout=10, **kwargs)
        if resp.status_code != 429 or time.monotonic() > deadline:
            return resp
        time.sleep(min(2.0, float(resp.headers.get("Retry-After", "1"))))


def push_during_attack(stack, deadline: float) -> None:
    data = b'{"os":"linux","architecture":"riscv64"}'
    resp = retrying("POST", f"{stack.url}/v2/{REPO}/blobs/uploads/", deadline, headers={"Content-Length": "0"})
    assert resp.status_code == 202, describe(resp)
    location = absolute(stack.url, resp.headers["Location"])
    resp = retrying("PUT", f"{location}?digest={digest_of(data)}", deadline, data=data,
                    headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, describe(resp)
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "layers": [], "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(data), "size": len(data)}})
    resp = retrying("PUT", f"{stack.url}/v2/{REPO}/manifests/during", deadline, data=body,
                    headers={"Content-Type": MANIFEST_V1})
    assert resp.status_code == 201, describe(resp)


def test_a_few_addresses_cannot_lock_a_normal_client_out(stack):
    config = push_blob(stack.url, REPO, b'{"os":"linux","architecture":"arm64"}')
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "layers": [], "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 37}}).encode()
    push_manifest(stack.url, REPO, "latest", body)
    paths = [start_upload(stack.url, REPO)[len(stack.url):] for _ in TRICKLE_SOURCES]

    started = time.monotonic()
    flood = HeaderFlood("127.0.0.1", stack.port, "127.0.0.2", HALF_OPEN).start()
    trickles = Trickles(stack, paths).start()
    try:
        held = len(flood.open)
        time.sleep(2)  # every trickle is in: the upload cap is full
        pulled_at = time.monotonic()
        deadline = started + ATTACK_SECONDS - 5
        manifest = retrying("GET", f"{stack.url}/v2/{REPO}/manifests/latest", deadline,
                            headers={"Accept": MANIFEST_V1})
        assert manifest.status_code == 200 and manifest.content == body, describe(manifest)
        blob = retrying("GET", f"{stack.url}/v2/{REPO}/blobs/{config}", deadline)
        assert blob.status_code == 200 and digest_of(blob.content) == config, describe(blob)
        pull_seconds = time.monotonic() - pulled_at
        push_during_attack(stack, deadline)
        pushed_after = time.monotonic() - started
        time.sleep(max(0.0, started + HEADER_TIMEOUT + 3 - time.monotonic()))  # a round of header timeouts
        until = time.monotonic() + 15  # on a loaded machine the re-opened trickles may not be answered yet
        while not any(status == 429 for status, _b in trickles.answers) and time.monotonic() < until:
            time.sleep(0.5)
    finally:
        trickles.close()
        flood.close()
    print(f"\nattack: {held} half-sent connections held; pull {pull_seconds:.2f} s; push done after "
          f"{pushed_after:.1f} s; trickle answers {Counter(s for s, _b in trickles.answers)}")

    assert held == HALF_OPEN and flood.refused == 0, (held, flood.refused)
    assert flood.closed_by_server >= HALF_OPEN // 2, flood.closed_by_server
    assert HEADER_TIMEOUT - 1 <= min(flood.lifetimes) and max(flood.lifetimes) <= HEADER_TIMEOUT + 5, \
        (min(flood.lifetimes), max(flood.lifetimes))
    assert pull_seconds < 5, pull_seconds
    assert pushed_after < MIN_RATE_WINDOW + 15, pushed_after
    codes = {}
    for status, answer in trickles.answers:
        assert status in (408, 429), (status, answer)
        error = json.loads(answer)["errors"][0]
        codes.setdefault(status, set()).add(error["code"])
    assert codes.get(408) == {"BLOB_UPLOAD_INVALID"}, codes  # cut by the app: slower than the minimum rate
    assert codes.get(429) == {"TOOMANYREQUESTS"}, codes  # then refused: paused, or nginx's cap
    paused = [json.loads(a)["errors"][0] for s, a in trickles.answers if s == 429]
    assert any(e.get("detail", {}).get("reason") == "slow upload" for e in paused), paused


PER_ADDRESS = 128  # deploy/nginx.conf limit_conn registry_conn_per_client


def test_one_address_holds_at_most_its_share_of_requests_in_progress(stack):
    """140 manifest PUTs from one address that never send their bodies: nginx reads bodies before passing
    them on, so each holds only an nginx connection, and only 128 at once; the rest get a JSON 429 at once.
    Another address is served meanwhile."""
    import socket

    held = []
    try:
        for i in range(PER_ADDRESS + 12):
            sock = socket.create_connection(("127.0.0.1", stack.port), timeout=5, source_address=("127.0.0.9", 0))
            sock.sendall(f"PUT /v2/{REPO}/manifests/slow{i} HTTP/1.1\r\nHost: x\r\nContent-Type: {MANIFEST_V1}\r\n"
                         "Content-Length: 1000\r\n\r\n{".encode())
            held.append(sock)
        time.sleep(1)
        answered = []
        for sock in held:
            sock.settimeout(0.05)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            answered.append(data)
        assert len(answered) == 12, [a[:100] for a in answered]
        for data in answered:
            head, _sep, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 429 ") and b"Retry-After: 2" in head, data[:300]
            assert json.loads(body)["errors"][0]["code"] == "TOOMANYREQUESTS"
        resp = fresh("GET", f"{stack.url}/v2/", timeout=5)
        assert resp.status_code == 200, describe(resp)
    finally:
        for sock in held:
            sock.close()
