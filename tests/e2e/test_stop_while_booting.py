"""A stop sent while gunicorn workers are still booting is kept (gunicorn_setup.post_fork).

Before the hook, a SIGTERM that reached a worker between its fork and gunicorn's own signal handlers
ran the master's copied handler and was lost: the worker came up and held the master's stop for
``graceful_timeout`` (30 s) until it was killed. CI saw it as "`registry-ext serve` ignored SIGTERM"
in tests that stop a server right after it started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.e2e_server import RegistryServer, pid_alive

pytestmark = pytest.mark.e2e

STOPPED_WITHIN = 15.0  # well under gunicorn's graceful_timeout (30 s), which a lost stop would wait out


def boot_then_stop(server: RegistryServer, booted: int) -> int:
    """Start serve; SIGTERM the master as soon as ``booted`` workers said they are booting; its exit code."""
    err = server.stderr_path.open("wb")
    proc = subprocess.Popen(server.command(), stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                            cwd=server.workdir, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while server.stderr_path.read_text().count("Booting worker") < booted:
            assert proc.poll() is None and time.monotonic() < deadline, server.stderr_path.read_text()
            time.sleep(0.001)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(STOPPED_WITHIN)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"serve still running {STOPPED_WITHIN}s after SIGTERM:\n{server.stderr_path.read_text()}")
    finally:
        err.close()


def test_a_stop_sent_while_workers_boot_ends_the_server_at_once(redis_server, tmp_path):
    for attempt in range(2):
        server = RegistryServer(tmp_path / f"run{attempt}", redis_url=redis_server,
                                key_prefix=f"boot{attempt}", workers=4)
        assert boot_then_stop(server, 1 + 2 * attempt) == 0, server.stderr_path.read_text()


def children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def test_a_worker_told_to_stop_right_after_its_fork_stops(redis_server, tmp_path):
    """SIGTERM to each worker the moment it appears (microseconds after its fork, before gunicorn's
    handlers): each exits (the master replaces it) instead of living on with its stop swallowed."""
    server = RegistryServer(tmp_path / "run", redis_url=redis_server, key_prefix="bootw", workers=2)
    err = server.stderr_path.open("wb")
    proc = subprocess.Popen(server.command(), stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                            cwd=server.workdir, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            start_new_session=True)
    try:
        told: list[int] = []
        deadline = time.monotonic() + 30
        while len(told) < 2 and time.monotonic() < deadline:
            for pid in children(proc.pid) - set(told):
                if not Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"redis-server"):
                    os.kill(pid, signal.SIGTERM)
                    told.append(pid)
        assert len(told) == 2, server.stderr_path.read_text()
        deadline = time.monotonic() + STOPPED_WITHIN
        while any(pid_alive(pid) for pid in told) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in told if pid_alive(pid)], server.stderr_path.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        err.close()


def test_a_stop_pending_across_the_fork_reaches_the_worker():
    """The mechanism itself, in a child process (pytest's own handlers untouched): a SIGTERM sent
    while the stop signals are blocked (from pre_fork in the master until post_fork in the worker)
    stays pending and is delivered to the worker's handler when post_fork unblocks."""
    from registry_ext.gunicorn_setup import STOP_SIGNALS, post_fork, pre_fork

    class Worker:
        alive = True

    pid = os.fork()
    if pid == 0:
        worker = Worker()
        pre_fork(None, worker)
        os.kill(os.getpid(), signal.SIGTERM)  # blocked: pending, the default action (exit) not taken
        pending = signal.SIGTERM in signal.sigpending()
        post_fork(None, worker)
        blocked = set(signal.pthread_sigmask(signal.SIG_BLOCK, [])) & set(STOP_SIGNALS)
        os._exit(0 if (pending, worker.alive, blocked) == (True, False, set()) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
