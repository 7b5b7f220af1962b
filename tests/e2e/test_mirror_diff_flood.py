"""80 anonymous mirror-diff requests against a remote that never answers do not stall the registry.

`registry-ext serve` (2 workers x 16 threads) with a configured remote that accepts connections and never
replies (timeout 5 s). 80 requests at once, half for one repository (identical) and half for 40 others.
Before the bounds each held a thread for timeout x retries and the registry stopped answering for 60-70 s.
Now each worker runs at most 2 comparisons and lets 2 identical requests wait for them; the others get 429
TOOMANYREQUESTS at once, every request is answered within the deadline, and /v2/ and tags/list keep
answering while the comparisons run.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.e2e_server import RegistryServer
from tests.support.fake_remote import SilentRemote

pytestmark = pytest.mark.e2e
BUDGET = 5
WORKERS, PER_WORKER = 2, 2 + 2  # max_comparisons running + as many waiting


@pytest.fixture
def server(tmp_path, redis_server):
    with SilentRemote() as remote:
        config = tmp_path / "registry.toml"
        config.write_text(f'[mirror]\nremotes = {{ silent = {{ url = "{remote.url}", timeout = {BUDGET} }} }}\n')
        server = RegistryServer(tmp_path / "server", redis_url=redis_server, key_prefix=f"flood{uuid.uuid4().hex[:8]}",
                                env={"REGISTRY_EXT_CONFIG": str(config)})
        try:
            server.start()
            yield server, remote
        finally:
            server.close()


def probe(url: str, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        for path in ("/v2/", "/v2/flood/app/tags/list"):
            began = time.monotonic()
            resp = requests.get(url + path, timeout=30)
            assert resp.status_code in (200, 404), resp.text
            latencies.append(time.monotonic() - began)
        time.sleep(0.05)


def test_a_silent_remote_does_not_stall_the_registry(server):
    server, remote = server
    paths = [f"/v2/flood/app{'' if i % 2 else i}/_regext/mirror-diff?remote=silent" for i in range(80)]
    stop, latencies = threading.Event(), []
    prober = threading.Thread(target=probe, args=(server.url, stop, latencies))
    prober.start()

    def one(path: str) -> tuple[int, float]:
        began = time.monotonic()
        resp = requests.get(server.url + path, timeout=60)
        if resp.status_code == 429:
            assert resp.json()["errors"][0]["code"] == "TOOMANYREQUESTS" and resp.headers["Retry-After"] == "5"
        else:
            assert resp.status_code == 200 and resp.json()["status"] == "error", resp.text[:300]
        return resp.status_code, time.monotonic() - began

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(80) as pool:
            results = list(pool.map(one, paths))
    finally:
        stop.set()
        prober.join(30)
    elapsed = time.monotonic() - started
    answered = [s for s, _t in results if s == 200]
    assert 1 <= len(answered) <= WORKERS * PER_WORKER, results
    assert elapsed < BUDGET + 4, (elapsed, results)
    assert max(t for s, t in results if s == 429) < BUDGET, results  # refused at once, not queued behind
    assert remote.accepted <= WORKERS * 2, remote.accepted  # comparisons, not requests, reached the remote
    assert latencies and max(latencies) < 2.0, sorted(latencies)[-5:]
