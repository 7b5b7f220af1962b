"""Prometheus multiprocess files stay bounded while workers die, and the totals stay exact.

The shipped stack (deploy/: nginx, gunicorn with 2 workers, its `child_exit` hook); a worker is killed
with SIGKILL ten times between rounds of requests. Each dead worker's counter and histogram files are
folded into `counter_archive.db` / `histogram_archive.db` (registry_ext/metrics.compact): the folder
keeps 3 files per live worker plus the archives, and /metrics counts every request ever answered.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import expect, fresh
from tests.support.e2e_server import pid_alive

pytestmark = pytest.mark.e2e
ROUNDS, PER_ROUND = 10, 7
KEY = 'registry_http_requests_total{method="GET",route="v2.base",status="200"}'
COUNT = 'registry_http_request_duration_seconds_count{method="GET",route="v2.base"}'


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DeployStack(tmp_path_factory.mktemp("metrics")).start()
    yield stack
    stack.stop()


def booted(stack) -> list[int]:
    return [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", stack.gunicorn_log.read_text())]


def live_workers(stack) -> list[int]:
    return [pid for pid in booted(stack) if pid_alive(pid)]


def wait_workers(stack, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = live_workers(stack)
        if len(booted(stack)) >= count and len(pids) == stack.workers:
            return pids
        time.sleep(0.05)
    pytest.fail(f"gunicorn did not replace a killed worker\n{stack.diagnostics()}")


def scrape(stack) -> dict[str, float]:
    text = expect(fresh("GET", f"{stack.url}/metrics"), 200).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_files_of_dead_workers_are_compacted_and_totals_kept(stack):
    sent = 0
    dead: list[int] = []
    for round_ in range(ROUNDS):
        for _ in range(PER_ROUND):
            expect(fresh("GET", f"{stack.url}/v2/"), 200)
            sent += 1
        victim = live_workers(stack)[round_ % stack.workers]
        os.kill(victim, signal.SIGKILL)
        dead.append(victim)
        wait_workers(stack, stack.workers + round_ + 1)
    samples = scrape(stack)
    assert samples[KEY] == sent and samples[COUNT] == sent, (sent, samples.get(KEY), samples.get(COUNT))

    files = sorted(p.name for p in Path(stack.metrics_dir).iterdir())
    databases = [f for f in files if f.endswith(".db")]
    assert {"counter_archive.db", "histogram_archive.db"} <= set(databases), files
    assert not [f for f in files if any(f"_{pid}.db" in f for pid in dead)], (dead, files)
    assert len(databases) <= 3 * stack.workers + 2, files  # counter, histogram, live gauge per worker
    assert not [f for f in files if f.endswith(".tmp")], files
