"""One client opening upload sessions as fast as it can is capped; another client still pushes.

`registry-ext serve` with the default caps (limits.upload_sessions_per_client = 50, _per_repo = 100,
_max = 1000). 8 threads from 127.0.0.1 POST new sessions (spread over 20 repositories) for 4 s: past 50
open sessions every POST gets 429 TOOMANYREQUESTS with Retry-After, nothing more is written, and a
client from 127.0.0.2 opens sessions and pushes a blob meanwhile. (Before the caps, one client opened
~800 sessions a second, each kept 7 days, and filled a 64 MiB volume in 5 s.)
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter

import pytest

from tests.support.e2e_oci import digest_of

pytestmark = pytest.mark.e2e
PER_CLIENT = 50
THREADS, SECONDS = 8, 4.0


def request(port: int, method: str, path: str, source: str, body: bytes = b"") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    conn.request(method, path, body=body, headers={"Content-Length": str(len(body))})
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def flood(port: int, stop: threading.Event, statuses: Counter, lock: threading.Lock, worker: int) -> None:
    i = 0
    while not stop.is_set():
        resp = request(port, "POST", f"/v2/flood/r{(worker + i) % 20}/blobs/uploads/", "127.0.0.1")
        if resp.status == 429:
            error = json.loads(resp.body)["errors"][0]
            assert error["code"] == "TOOMANYREQUESTS" and resp.getheader("Retry-After") == "10", resp.body
        with lock:
            statuses[resp.status] += 1
        i += 1


def test_one_client_flooding_sessions_is_capped_and_others_push(registry):
    stop, lock, statuses = threading.Event(), threading.Lock(), Counter()
    threads = [threading.Thread(target=flood, args=(registry.port, stop, statuses, lock, w)) for w in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        other = request(registry.port, "POST", "/v2/flood/other/blobs/uploads/", "127.0.0.2")
        assert other.status == 202, other.body
        data = b"pushed while the flood runs"
        done = request(registry.port, "PUT", f"{other.getheader('Location')}?digest={digest_of(data)}", "127.0.0.2",
                       data)
        assert done.status == 201, done.body
        time.sleep(max(0.0, SECONDS - (time.monotonic() - started)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    elapsed = time.monotonic() - started
    sessions = list((registry.data_dir / "uploads").iterdir())
    # Workers counting at the same instant may each take the last slot: at most one per request in flight.
    assert PER_CLIENT <= statuses[202] <= PER_CLIENT + THREADS, statuses
    assert set(statuses) == {202, 429} and statuses[429] > 10 * PER_CLIENT, statuses
    assert len(sessions) == statuses[202], (len(sessions), statuses)
    print(f"\n{sum(statuses.values())} POSTs in {elapsed:.1f} s ({sum(statuses.values()) / elapsed:.0f}/s): {statuses}")
    resp = request(registry.port, "GET", f"/v2/flood/other/blobs/{digest_of(data)}", "127.0.0.2")
    assert resp.status == 200 and resp.body == data
