"""A private redis-server for `registry-ext serve` when no Redis URL is configured.

It listens only on a unix socket under the data directory (no TCP port),
persists with an append-only file there, and is restarted by a supervisor
thread in the gunicorn master if it dies. All workers share it.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)
_SUN_PATH_MAX = 107  # bytes of a unix socket path (sockaddr_un.sun_path is 108 with its NUL)


class EmbeddedRedisError(RuntimeError):
    """The private redis-server cannot run; the message says why and what to do."""


class EmbeddedRedis:
    def __init__(self, data_dir: str | Path, binary: str | None = None):
        self.dir = Path(data_dir).resolve() / "redis"
        self.socket = self.dir / "redis.sock"
        self.binary = binary or shutil.which("redis-server")
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> "EmbeddedRedis":
        """Start redis-server and wait until it answers PING."""
        if self.binary is None:
            raise EmbeddedRedisError("redis-server not found on PATH; install it (Debian: apt-get install "
                                     "redis-server) or give --redis-url (redis.url)")
        if len(os.fsencode(self.socket)) > _SUN_PATH_MAX:
            raise EmbeddedRedisError(f"the embedded Redis's socket path {self.socket} is longer than "
                                     f"{_SUN_PATH_MAX} bytes; use a shorter --data-dir or give --redis-url")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot create {self.dir} ({exc.strerror}); choose a writable "
                                     "--data-dir") from None
        self._spawn()
        threading.Thread(target=self._supervise, name="embedded-redis", daemon=True).start()
        return self

    def _spawn(self) -> None:
        assert self.binary is not None  # start() refuses to run without one
        args = [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
                # rewrite the AOF (into an RDB base) from 4 MB, not 64: replaying the commands of 10,000
                # pushes (21 MB) took 0.41 s of serve's start, loading their RDB base 0.08 s (issue #11)
                "--auto-aof-rewrite-min-size", "4mb",
                "--save", "", "--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()  # no-op when it exited; never leave a half-started one behind
                self.proc.wait()
                raise EmbeddedRedisError(f"the embedded redis-server did not start ({self._last_log_line()}); "
                                         f"see {self.dir / 'redis.log'}")
            time.sleep(0.005)  # it answers ~10-60 ms after the spawn: part of serve's cold start (issue #11)

    def _last_log_line(self) -> str:
        """redis-server's last words (``pid:role date # message`` -> message)."""
        try:
            lines = (self.dir / "redis.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1].split(" # ", 1)[-1].split(" * ", 1)[-1][:200] if lines else "empty log"

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            if self.proc is not None and self.proc.poll() is not None and not self._stopping.is_set():
                log.error("embedded redis-server exited (%s); restarting", self.proc.returncode)
                try:
                    self._spawn()
                except EmbeddedRedisError as exc:
                    log.error("%s", exc)

    def stop(self) -> None:
        self._stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
