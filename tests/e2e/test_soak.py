"""A short load soak in CI: the benchmark's mixed load against the deploy/ stack for 35 seconds.

The same procedure as ``bench/soak.py`` (``soak.run_soak``: client processes running
``bench/soak_load.py``, memory sampling, read-back of every acknowledged push,
``registry-ext check``), here against the tests' ``DeployStack`` (redis-server, gunicorn from
deploy/gunicorn.conf.py with 2 gthread workers, nginx from deploy/nginx.conf). It asserts
correctness and flat memory only; throughput and latency are printed by the bench, never asserted.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from e2e_deploy import DeployStack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import soak  # noqa: E402
import soak_report  # noqa: E402

pytestmark = pytest.mark.e2e

SECONDS = 35
WARMUP = 15  # every worker thread and nginx keep-alive connection has been used by then
# Growth allowed between the warm-up sample and the end, per worker. Measured on this 2-core
# machine: 0-3 MiB over 25 s at ~130 requests/s (bench/soak.py: a few MiB over 5 minutes). Noise
# comes from glibc's per-thread malloc arenas (16 threads), fragmentation and caches that fill
# lazily (compiled patterns, redis-py connections). A leak of one request body or response per
# request (manifests ~0.5 KiB, layers 1-16 KiB, listings 1-5 KiB) adds up to far more over the
# ~3,000 requests after warm-up, and a leaked thread or connection pool per request too.
RSS_GROWTH_MIB = 30


@pytest.fixture
def stack(tmp_path):
    stack = DeployStack(tmp_path).start()
    yield stack
    stack.stop()


def test_short_soak_answers_right_loses_nothing_and_keeps_worker_memory_flat(stack, tmp_path):
    services = stack.services
    target = soak.Target(stack.url, stack.dir / "registry.toml", stack.data, services["gunicorn"].pid,
                         services["redis"].pid, services["nginx"].pid, stack.gunicorn_log)
    result = soak.run_soak(target, seconds=SECONDS, warmup=WARMUP, clients=2, threads=3, sample_every=2,
                           workdir=tmp_path / "load")
    summary = soak_report.markdown(result)
    print(summary)  # shown with -s or -rP: the run's figures, for the record
    assert soak_report.problems(result) == [], summary
    assert result["requests"]["total"]["count"] > 0 and result["verify"]["acknowledged_pushes"] > 0, summary
    assert len(result["server_log"]["requests_by_worker"]) == 2, f"both workers must serve\n{summary}"
    growth = soak_report.rss_growth(result)
    assert len(growth) == 2, f"RSS of both workers at warm-up and end: {growth}\n{summary}"
    assert all(mib < RSS_GROWTH_MIB for mib in growth.values()), f"worker RSS grew: {growth}\n{summary}"
