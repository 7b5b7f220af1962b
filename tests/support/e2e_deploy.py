"""The production stack from deploy/, on loopback ports, for the end-to-end tests.

``DeployStack`` starts a private ``redis-server``, gunicorn exactly as the
systemd unit does (``gunicorn -c deploy/gunicorn.conf.py wsgi:app`` with
``REGISTRY_EXT_CONFIG``), the update feed's waiter as its unit does
(``registry-ext feed-waiter``), and nginx as the current user with
``deploy/nginx-standalone.conf`` around ``deploy/nginx.conf``. The site file
is used as shipped except for five values (port, upstream, waiter, blob
folder, access log), each of which must occur exactly once, so the test
breaks loudly if the shipped file drifts.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
START_TIMEOUT = 40.0


def render_site(listen: int, upstream: int, blobs_dir: Path, access_log: str, waiter: int) -> str:
    """deploy/nginx.conf with this run's values."""
    text = (DEPLOY / "nginx.conf").read_text()
    for old, new in (("listen 80;", f"listen 127.0.0.1:{listen};"),
                     ("server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream};"),
                     ("server 127.0.0.1:5001;", f"server 127.0.0.1:{waiter};"),
                     ("alias /var/lib/registry-ext/blobs/;", f"alias {blobs_dir}/;"),
                     ("access_log /var/log/nginx/registry-ext.access.log", f"access_log {access_log}")):
        assert text.count(old) == 1, f"deploy/nginx.conf must contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def render_main() -> str:
    """deploy/nginx-standalone.conf; as root, workers keep root's identity (not `nobody`),
    so they can read the test's private temp folders."""
    text = (DEPLOY / "nginx-standalone.conf").read_text()
    if os.geteuid() == 0:
        text = f"user {pwd.getpwuid(0).pw_name};\n" + text
    return text


class Service:
    """A process in its own session, with its output in a file."""

    def __init__(self, name: str, argv: list[str], workdir: Path, **kwargs):
        self.name = name
        self.log = workdir / f"{name}.out"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, **kwargs)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self, limit: int = 4000) -> str:
        return f"--- {self.name} ---\n" + self.log.read_text(errors="replace")[-limit:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:  # children (gunicorn workers, nginx workers) go with the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode


class DeployStack:
    def __init__(self, workdir: Path, workers: int = 2, threads: int = 16, extra_config: str = ""):
        for tool in ("nginx", "redis-server"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} is not installed (apt-get install {tool})")
        self.dir = workdir
        self.data = workdir / "data"
        self.metrics_dir = workdir / "metrics"
        self.nginx_dir = workdir / "nginx"
        self.redis_port, self.gunicorn_port, self.port = free_port(), free_port(), free_port()
        self.waiter_port = free_port()
        self.workers, self.threads = workers, threads
        self.extra_config = extra_config  # more TOML tables for the registry (e.g. [auth])
        self.services: dict[str, Service] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def nginx_log(self) -> Path:
        return self.nginx_dir / "logs" / "access.log"

    @property
    def gunicorn_log(self) -> Path:
        return self.services["gunicorn"].log

    def start(self) -> "DeployStack":
        try:
            self.start_redis()
            self._start_gunicorn()
            self._start_waiter()
            self._start_nginx()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start_redis(self) -> None:
        self.services["redis"] = Service("redis", [
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.dir)], self.dir)

    def _start_gunicorn(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        config = self.dir / "registry.toml"
        config.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {self.gunicorn_port}\nworkers = {self.workers}\n'
            f'threads = {self.threads}\nx_accel_prefix = "/_blobs"\ntrusted_proxies = 1\n'
            f'[storage]\nroot = "{self.data}"\n'
            f'[redis]\nurl = "redis://127.0.0.1:{self.redis_port}/0"\n'
            f'[metrics]\ndir = "{self.metrics_dir}"\n'
            f'[feed]\nwait_offload = "/_regext_wait"\nwaiter_listen = "127.0.0.1:{self.waiter_port}"\n'
            + self.extra_config)
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.services["gunicorn"] = Service(
            "gunicorn", [gunicorn, "-c", str(DEPLOY / "gunicorn.conf.py"), "wsgi:app"], self.dir,
            cwd=ROOT, env=self.env)

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_EXT_", "PROMETHEUS_"))}
        env.update(REGISTRY_EXT_CONFIG=str(self.dir / "registry.toml"), PYTHONUNBUFFERED="1")
        return env

    def _start_waiter(self) -> None:
        """`registry-ext feed-waiter` as deploy/systemd/registry-ext-waiter.service runs it."""
        self.services["waiter"] = Service(
            "waiter", [str(Path(sys.executable).parent / "registry-ext"), "feed-waiter"], self.dir,
            cwd=ROOT, env=self.env)

    def _start_nginx(self) -> None:
        (self.nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.nginx_dir / "registry-ext.conf").write_text(
            render_site(self.port, self.gunicorn_port, self.data / "blobs", "logs/access.log", self.waiter_port))
        (self.nginx_dir / "nginx.conf").write_text(render_main())
        self.services["nginx"] = Service("nginx", [
            "nginx", "-e", "stderr", "-p", str(self.nginx_dir), "-c", str(self.nginx_dir / "nginx.conf")],
            self.dir)

    def wait_ready(self) -> None:
        deadline, last = time.monotonic() + START_TIMEOUT, "no answer"
        while time.monotonic() < deadline:
            for service in self.services.values():
                if service.proc.poll() is not None:
                    pytest.fail(f"{service.name} exited with {service.proc.returncode}\n{self.diagnostics()}")
            try:
                resp = requests.get(f"{self.url}/readyz", timeout=2)
                if resp.status_code == 200 and self._waiter_listens():
                    return
                last = f"{resp.status_code} {resp.text[:300]}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.1)
        pytest.fail(f"the stack did not get ready through nginx in {START_TIMEOUT}s ({last})\n"
                    f"{self.diagnostics()}")

    def _waiter_listens(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.waiter_port), timeout=1).close()
            return True
        except OSError:
            return False

    def diagnostics(self) -> str:
        parts = [service.output() for service in self.services.values()]
        if (self.nginx_dir / "logs" / "error.log").exists():
            parts.append("--- nginx error.log ---\n"
                         + (self.nginx_dir / "logs" / "error.log").read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def log_lines(self, path: Path, needle: str) -> list[str]:
        return [line for line in path.read_text(errors="replace").splitlines() if needle in line]

    def wait_log_line(self, path: Path, needle: str, timeout: float = 5.0) -> str:
        """The first line of ``path`` containing ``needle`` (logs are written after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines(path, needle)
            if lines:
                return lines[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {needle!r} in {path}:\n"
                                     + path.read_text(errors="replace")[-3000:])
            time.sleep(0.05)

    def stop(self) -> None:
        for name in ("nginx", "waiter", "gunicorn", "redis"):
            service = self.services.pop(name, None)
            if service is not None:
                service.stop()
