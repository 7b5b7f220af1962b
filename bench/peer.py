"""Start the registries under test on loopback: the peer (Debian's ``docker-registry``,
CNCF distribution 2.8) and ours (``registry-ext serve``).

As a library::

    from bench.peer import peer_registry, ours_registry
    with peer_registry() as peer, ours_registry(workers=2) as ours:
        print(peer.url, ours.url)

As a CLI (runs until Ctrl-C)::

    python -m bench.peer --port 5001 --data /tmp/peer-data
    python -m bench.peer --kind ours --port 5002 --data /tmp/ours-data --workers 2

Peer configuration (written to a temporary config.yml): filesystem storage under the data
dir, ``delete: enabled: true``, no auth, ``http.addr 127.0.0.1:PORT``, log level warn,
access log off, the ``inmemory`` blob-descriptor cache (what the Debian package ships and
what makes repeated manifest HEAD/GET cheap), upload purging and the storage-driver health
check off (background work that would only add noise).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import requests

from bench._common import free_port
PEER_BINARY = "/usr/bin/docker-registry"
OURS_BINARY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           ".venv", "bin", "registry-ext")

PEER_CONFIG = """\
version: 0.1
log:
  level: {log_level}
  formatter: text
{access_log}storage:
  filesystem:
    rootdirectory: {root}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
{headers}health:
  storagedriver:
    enabled: false
"""
ACCESS_LOG_OFF = "  accesslog:\n    disabled: true\n"
NOSNIFF_HEADER = "  headers:\n    X-Content-Type-Options: [nosniff]\n"


def peer_config(root: str, port: int, log_level: str = "warn", access_log: bool = False,
                nosniff: bool = True) -> str:
    """The peer's config.yml (see the module docstring); the access log and the nosniff header are optional."""
    return PEER_CONFIG.format(log_level=log_level, root=root, port=port,
                              access_log="" if access_log else ACCESS_LOG_OFF,
                              headers=NOSNIFF_HEADER if nosniff else "")


class Server:
    """A registry process started in its own process group (so its children stop with it)."""

    def __init__(self, kind: str, proc: subprocess.Popen, url: str, data_dir: str,
                 workdir: str | None, log_path: str, argv: list[str], log_fh):
        self.kind = kind
        self.proc = proc
        self.url = url
        self.data_dir = data_dir
        self.workdir = workdir          # temp dir we created (removed on stop) or None
        self.log_path = log_path
        self.argv = argv
        self._log_fh = log_fh
        self.pgid = proc.pid            # start_new_session=True: pgid == pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, "r", errors="replace") as fh:
                return "".join(fh.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0, keep_data: bool = False) -> None:
        """SIGTERM the process group we started, SIGKILL it after ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.proc.wait(5)
        # gunicorn workers / an embedded redis may outlive the master for a moment
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None
        if self.workdir and not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_ready(server: Server, timeout: float, url: str | None = None) -> None:
    """Poll ``GET url`` (default ``<server>/v2/``) until it answers 200/401, the process dies, or ``timeout``
    passes."""
    url = url or server.url + "/v2/"
    deadline = time.monotonic() + timeout
    last = "no answer"
    with requests.Session() as sess:
        sess.trust_env = False
        for _ in range(int(timeout / 0.1) + 1):      # bounded in count and in time
            if not server.alive():
                raise RuntimeError(f"{server.kind} exited with {server.proc.returncode} before it was ready;"
                                   f" log tail:\n{server.log_tail()}")
            try:
                resp = sess.get(url, timeout=2)
                if resp.status_code in (200, 401):
                    return
                last = f"HTTP {resp.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.kind} not ready after {timeout}s ({last}); log tail:\n{server.log_tail()}")


def spawn(kind: str, argv: list[str], log_path: str, cwd: str, env=None, url: str = "", data_dir: str = "",
          workdir: str | None = None) -> Server:
    """Start ``argv`` in its own session (stopped by process group), output appended to ``log_path``."""
    log_fh = open(log_path, "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env, cwd=cwd)
    return Server(kind, proc, url, data_dir, workdir, log_path, argv, log_fh)


def _spawn_registry(kind: str, argv: list[str], port: int, data_dir: str, workdir: str, env=None) -> Server:
    return spawn(kind, argv, os.path.join(workdir, f"{kind}.log"), workdir, env, f"http://127.0.0.1:{port}",
                 data_dir, workdir)


def start_peer(port: int | None = None, data_dir: str | None = None, log_level: str = "warn",
               binary: str = PEER_BINARY, timeout: float = 20.0, access_log: bool = False,
               nosniff: bool = True) -> Server:
    """Start ``docker-registry`` (distribution 2.8) on 127.0.0.1:port with a temporary config."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="bench-peer-")
    if data_dir is None:
        data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    config_path = os.path.join(workdir, "config.yml")
    with open(config_path, "w") as fh:
        fh.write(peer_config(os.path.abspath(data_dir), port, log_level, access_log, nosniff))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    server = _spawn_registry("peer", [binary, "serve", config_path], port, data_dir, workdir, env)
    wait_ready(server, timeout)
    return server


def start_ours(port: int | None = None, data_dir: str | None = None, workers: int = 2,
               redis_url: str | None = None, binary: str = OURS_BINARY, timeout: float = 60.0,
               extra_args: list[str] | None = None, env: dict | None = None) -> Server:
    """Start ``registry-ext serve`` (gunicorn; embedded redis unless ``redis_url`` is given; ``env``: its whole
    environment, default ours)."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="bench-ours-")
    if data_dir is None:
        data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    argv = [binary, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", os.path.abspath(data_dir), "--workers", str(workers)]
    if redis_url:
        argv += ["--redis-url", redis_url]
    argv += list(extra_args or [])
    server = _spawn_registry("ours", argv, port, data_dir, workdir, env)
    wait_ready(server, timeout)
    return server


@contextlib.contextmanager
def peer_registry(**kwargs):
    server = start_peer(**kwargs)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def ours_registry(**kwargs):
    server = start_ours(**kwargs)
    try:
        yield server
    finally:
        server.stop()


def peer_version(binary: str = PEER_BINARY) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["peer", "ours"], default="peer",
                    help="peer = Debian docker-registry (default); ours = registry-ext serve")
    ap.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    ap.add_argument("--data", default=None, help="storage directory (default: a temp dir, removed on exit)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers for --kind ours (default 2)")
    ap.add_argument("--redis-url", default=None, help="for --kind ours: use this redis instead of the embedded one")
    ap.add_argument("--log-level", default="warn", help="peer log level (default warn)")
    ap.add_argument("--binary", default=None, help="override the server binary")
    ap.add_argument("--max-seconds", type=float, default=4 * 3600,
                    help="stop by itself after this many seconds (default 14400)")
    args = ap.parse_args(argv)

    if args.kind == "peer":
        server = start_peer(port=args.port or None, data_dir=args.data, log_level=args.log_level,
                            binary=args.binary or PEER_BINARY)
    else:
        server = start_ours(port=args.port or None, data_dir=args.data, workers=args.workers,
                            redis_url=args.redis_url, binary=args.binary or OURS_BINARY)
    print(f"{server.kind} registry ready at {server.url} (pid {server.proc.pid}, data {server.data_dir},"
          f" log {server.log_path}); Ctrl-C to stop", flush=True)
    stop = {"flag": False}

    def _handler(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _handler)
    deadline = time.monotonic() + args.max_seconds
    try:
        while not stop["flag"] and server.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if not server.alive():
            print(f"{server.kind} exited with {server.proc.returncode}; log tail:\n{server.log_tail()}",
                  file=sys.stderr)
        server.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
