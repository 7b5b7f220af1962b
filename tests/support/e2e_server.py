"""Run ``registry-ext serve`` as a real subprocess for the end-to-end tests.

The server runs in its own session (process group) so that teardown can
check that SIGTERM took the whole tree down, and can clean up if it did not.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.servers import free_port

START_TIMEOUT = 40.0
STOP_TIMEOUT = 20.0
METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")


def cli_path() -> str:
    """The ``registry-ext`` console script next to the test interpreter."""
    candidate = Path(sys.executable).parent / "registry-ext"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("registry-ext")
    if found is None:
        pytest.fail("the `registry-ext` console script is not installed "
                    "(pip install -e . in the venv)")
    return found


@dataclass(frozen=True)
class AccessEntry:
    pid: int
    method: str
    path: str
    line: str


_PID = re.compile(r"\bpid=<?(\d+)>?")
_METHOD = re.compile(r"\b(" + "|".join(METHODS) + r")\b")
_PATH = re.compile(r"(/v2/[^\s\"]*)")


def parse_access_line(line: str) -> AccessEntry | None:
    pid, method, path = _PID.search(line), _METHOD.search(line), _PATH.search(line)
    if not (pid and method and path):
        return None
    return AccessEntry(int(pid.group(1)), method.group(1), path.group(1), line)


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, cmdline) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":  # zombies are dead already
            continue
        table[int(entry)] = (int(fields[1]), cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return table


def descendants(pid: int) -> dict[int, str]:
    """Live descendants of ``pid``: pid -> command line."""
    table = _proc_table()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, cmd) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmd
                frontier.append(child)
    return found


def processes_mentioning(text: str, *, name: str) -> dict[int, str]:
    """Live processes whose command line contains ``name`` and ``text``
    (or whose working directory is under ``text``)."""
    found = {}
    for pid, (_, cmd) in _proc_table().items():
        if name not in cmd or pid == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if text in cmd or cwd.startswith(text):
            found[pid] = cmd
    return found


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


class RegistryServer:
    """One ``registry-ext serve`` instance; ``restart()`` keeps port and data."""

    def __init__(self, workdir: Path, *, redis_url: str | None = None,
                 key_prefix: str | None = None, workers: int = 2, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.access_log = self.workdir / "access.log"
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.workers = workers
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.last_returncode: int | None = None

    # -- addresses -------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server is not running"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [cli_path(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--data-dir", str(self.data_dir), "--workers", str(self.workers),
               "--access-log", str(self.access_log)]
        if self.redis_url:
            cmd += ["--redis-url", self.redis_url]
        if self.key_prefix:
            cmd += ["--key-prefix", self.key_prefix]
        return cmd

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"serve-{self.generation}.stderr"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"serve-{self.generation}.stdout"

    def output(self, limit: int = 6000) -> str:
        """Tail of stdout+stderr of the current (or last) generation."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text = path.read_text(errors="replace")
                if text.strip():
                    parts.append(f"--- {path.name} ---\n{text[-limit:]}")
        return "\n".join(parts) or "(no output)"

    def diagnostics(self) -> str:
        """Server output plus the tail of the access log, for failure messages."""
        tail = ""
        if self.access_log.exists():
            tail = "\n".join(self.access_log.read_text(errors="replace").splitlines()[-40:])
        return f"{self.output()}\n--- access log (tail) ---\n{tail}"

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        assert self.proc is None, "already running"
        self.generation += 1
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                pytest.fail(f"`registry-ext serve` exited with {code} before answering "
                            f"GET /v2/\ncommand: {self.command()}\n{self.output()}")
            try:
                with requests.get(f"{self.url}/v2/", timeout=2) as resp:
                    if resp.status_code in (200, 401):
                        return
                    last_error = f"HTTP {resp.status_code}: {resp.text[:300]}"
            except requests.RequestException as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self._kill_group()
        pytest.fail(f"`registry-ext serve` did not answer GET /v2/ within {START_TIMEOUT}s "
                    f"(last: {last_error})\ncommand: {self.command()}\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM; wait for the whole process group to go away; return exit code."""
        assert self.proc is not None, "not running"
        proc, pgid = self.proc, self.proc.pid
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group()
            pytest.fail(f"`registry-ext serve` ignored SIGTERM for {STOP_TIMEOUT}s "
                        f"(killed it)\n{self.output()}")
        self.proc = None
        self.last_returncode = code
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(pgid):
            leftovers = {pid: cmd for pid, cmd in _proc_table_cmds().items()
                         if _pgid(pid) == pgid}
            _killpg(pgid)
            pytest.fail(f"processes survived SIGTERM of `registry-ext serve` "
                        f"(exit {code}): {leftovers}\n{self.output()}")
        return code

    def wait_crashed(self, timeout: float = 10) -> None:
        """The whole server was killed (a crash test): reap it and forget it."""
        assert self.proc is not None, "not running"
        pgid = self.proc.pid
        self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _kill_group(self) -> None:
        if self.proc is not None:
            _killpg(self.proc.pid)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None

    def close(self) -> None:
        """Teardown: stop if running (failing loudly if SIGTERM does not work)."""
        if self.proc is not None:
            self.stop()

    # -- access log ------------------------------------------------------
    def access_entries(self) -> list[AccessEntry]:
        if not self.access_log.exists():
            return []
        entries = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            entry = parse_access_line(line)
            if entry is not None:
                entries.append(entry)
        return entries

    def wait_for_entries(self, predicate, count: int, timeout: float = 5.0) -> list[AccessEntry]:
        """Entries matching ``predicate`` once at least ``count`` are logged."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [e for e in self.access_entries() if predicate(e)]
            if len(matching) >= count or time.monotonic() > deadline:
                return matching
            time.sleep(0.05)

    def worker_pids(self) -> set[int]:
        """Live descendants of the serve process that are not redis-server."""
        return {pid for pid, cmd in descendants(self.pid).items() if "redis-server" not in cmd}


def _group_alive(pgid: int) -> bool:
    return any(_pgid(pid) == pgid for pid in _proc_table())


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _proc_table_cmds() -> dict[int, str]:
    return {pid: cmd for pid, (_, cmd) in _proc_table().items()}


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
