"""The deployment the ``workers.py`` benchmarks run against, from the files in deploy/.

Not a script. ``Stack`` starts redis-server (unix socket), gunicorn (``-c deploy/gunicorn.conf.py`` plus a
candidate's arguments) and nginx (deploy/nginx.conf rendered for this run), and optionally Debian's
``docker-registry`` (started by peer.py) behind a second server block of the same nginx site config.
Every process runs in its own process group and is stopped by it.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from bench._common import free_port
from bench.peer import Server, spawn, start_peer, wait_ready
ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0


def render_site(listen: int, upstream: int, blobs_dir: Path, access_log: str, name: str = "registry_ext",
                with_globals: bool = True, waiter: int = 5001) -> str:
    """deploy/nginx.conf with this run's port, upstream, waiter, blob folder and log (each found exactly once)."""
    text = (DEPLOY / "nginx.conf").read_text()
    for old, new in (("listen 80;", f"listen {HOST}:{listen};"),
                     ("server 127.0.0.1:5000;", f"server {HOST}:{upstream};"),
                     ("server 127.0.0.1:5001;", f"server {HOST}:{waiter};"),
                     ("alias /var/lib/registry-ext/blobs/;", f"alias {blobs_dir}/;"),
                     ("access_log /var/log/nginx/registry-ext.access.log", f"access_log {access_log}")):
        if text.count(old) != 1:
            raise RuntimeError(f"deploy/nginx.conf: expected {old!r} exactly once")
        text = text.replace(old, new)
    if name != "registry_ext":
        text = text.replace("upstream registry_ext", f"upstream {name}")
        text = text.replace("http://registry_ext", f"http://{name}")
    if not with_globals:  # a second site in the same http {}: map, log_format and zones exist already
        text = re.sub(r"\nmap \$http_x_request_id.*?\n}\n", "\n", text, flags=re.S)
        text = re.sub(r"\nlog_format registry_ext .*?;\n", "\n", text, flags=re.S)
        text = re.sub(r"\nlimit_conn_zone [^\n]*;", "", text)  # the upload caps' zones, shared
    return text


class Stack:
    """redis-server + gunicorn (deploy/gunicorn.conf.py) + nginx (deploy/), optionally the peer."""

    def __init__(self, workdir: Path, gunicorn_args: list[str], accel: bool = True, peer: bool = False,
                 metrics: bool = True, waiter: bool = False):
        self.dir = workdir
        self.procs: list[Server] = []
        self.data = workdir / "data"
        self.data.mkdir(parents=True)
        self.gunicorn_port, self.nginx_port = free_port(), free_port()
        self.gunicorn_args = gunicorn_args
        self.accel = accel
        self.peer = peer
        self.metrics = metrics
        self.peer_port = self.peer_nginx_port = None
        self.waiter = waiter  # `registry-ext feed-waiter` holds the update feed's long-polls
        self.waiter_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.nginx_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_nginx_port}"

    def start(self) -> "Stack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> Server:
        proc = spawn(name, argv, str(self.dir / f"{name}.log"), str(cwd or self.dir), env)
        self.procs.append(proc)
        return proc

    def _start(self) -> None:
        gunicorn = self._start_app()
        site = render_site(self.nginx_port, self.gunicorn_port, self.data / "blobs", "logs/access.log",
                           waiter=self.waiter_port)
        peer = None
        if self.peer:
            peer, peer_site = self._start_peer()
            site += "\n" + peer_site
        self._start_nginx(site)
        wait_ready(gunicorn, READY_TIMEOUT, self.url + "/readyz")  # through nginx, with Redis answering
        if "-k" in self.gunicorn_args:
            wanted = self.gunicorn_args[self.gunicorn_args.index("-k") + 1]
            if f"Using worker: {wanted}" not in Path(gunicorn.log_path).read_text():
                raise RuntimeError(f"gunicorn is not running {wanted} workers:\n{gunicorn.log_tail(20)}")
        if peer is not None:
            wait_ready(peer, READY_TIMEOUT, self.peer_url + "/v2/")

    def _start_app(self) -> Server:
        """redis-server and gunicorn; returns gunicorn."""
        # A unix socket, as deploy/registry.toml has it (no TCP port, no persistence: a benchmark).
        socket_path = self.dir / "redis.sock"
        self._spawn("redis", ["redis-server", "--port", "0", "--unixsocket", str(socket_path),
                              "--unixsocketperm", "700", "--save", "", "--appendonly", "no"])
        config = self.dir / "registry.toml"
        config.write_text(
            f'[server]\nhost = "{HOST}"\nport = {self.gunicorn_port}\ntrusted_proxies = 1\n'
            f'x_accel_prefix = "{"/_blobs" if self.accel else ""}"\n'
            f'[storage]\nroot = "{self.data}"\n'
            f'[redis]\nurl = "unix://{socket_path}"\n'
            f'[metrics]\nenabled = {str(self.metrics).lower()}\ndir = "{self.dir / "metrics"}"\n'
            + (f'[feed]\nwait_offload = "/_regext_wait"\nwaiter_listen = "{HOST}:{self.waiter_port}"\n'
               if self.waiter else ""))
        env = dict(os.environ, REGISTRY_EXT_CONFIG=str(config), PYTHONUNBUFFERED="1")
        time.sleep(0.3)
        gunicorn = self._spawn("gunicorn", [str(VENV_BIN / "gunicorn"), "-c", str(DEPLOY / "gunicorn.conf.py"),
                                            *self.gunicorn_args, "wsgi:app"], env=env, cwd=ROOT)
        if self.waiter:
            self._spawn("waiter", [str(VENV_BIN / "registry-ext"), "feed-waiter"], env=env, cwd=ROOT)
        return gunicorn

    def _start_peer(self) -> tuple[Server, str]:
        """docker-registry as peer.py starts it, with its access log on (ours logs too) and without the
        nosniff header; returns it and its nginx server block."""
        self.peer_port, self.peer_nginx_port = free_port(), free_port()
        peer = start_peer(port=self.peer_port, data_dir=str(self.dir / "peer"), access_log=True, nosniff=False)
        self.procs.append(peer)
        site = render_site(self.peer_nginx_port, self.peer_port, self.data / "blobs", "logs/peer-access.log",
                           name="peer_registry", with_globals=False)
        return peer, site

    def _start_nginx(self, site: str) -> None:
        run = self.dir / "nginx"
        (run / "logs").mkdir(parents=True)
        (run / "registry-ext.conf").write_text(site)
        main = (DEPLOY / "nginx-standalone.conf").read_text()
        if os.geteuid() == 0:  # workers would drop to `nobody`, which cannot read our temp dirs
            main = f"user {os.environ.get('USER', 'root')};\n" + main
        (run / "nginx.conf").write_text(main)
        self._spawn("nginx", ["nginx", "-p", str(run), "-c", str(run / "nginx.conf"), "-e", "stderr"])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=20)
        self.procs.clear()
