"""A private redis-server for `registry-ext serve` when no Redis URL is configured.

It listens only on a unix socket under the data directory (no TCP port),
persists with an append-only file there, and is restarted by a supervisor
thread in the gunicorn master if it dies. All workers share it.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)


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
            raise RuntimeError("redis-server not found on PATH: install it (Debian: apt-get install "
                               "redis-server) or configure redis.url")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._spawn()
        threading.Thread(target=self._supervise, name="embedded-redis", daemon=True).start()
        return self

    def _spawn(self) -> None:
        args = [self.binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
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
                raise RuntimeError(f"embedded redis-server failed to start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            if self.proc is not None and self.proc.poll() is not None and not self._stopping.is_set():
                log.error("embedded redis-server exited (%s); restarting", self.proc.returncode)
                try:
                    self._spawn()
                except RuntimeError as exc:
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
