#!/usr/bin/env python3
"""Deployment benchmarks: the registry behind nginx, run from the files in deploy/.

Two commands (loopback only; every loop is bounded in count and time):

``workers``  which gunicorn worker class and counts to ship. For each candidate
             (sync, gthread with several thread counts, gevent when importable) it
             starts redis-server, gunicorn (``-c deploy/gunicorn.conf.py`` plus the
             candidate's ``-k/--workers/--threads``) and nginx (deploy/nginx.conf),
             then runs a mixed load for ``--duration`` seconds: small requests
             (manifest HEAD and tags/list), blob pulls, and ``--slow`` clients that
             trickle an upload (chunked PATCH, 16 KiB every 0.25 s) for the whole run.
             ``--mode app`` makes the app stream blobs itself (no X-Accel-Redirect).

``peer``     ours (gunicorn with the shipped settings) against Debian's
             ``docker-registry`` (distribution 2.8), both behind the same nginx
             site config, in alternating rounds: blob pull throughput (bodies
             spliced to /dev/null in the kernel, so the client is not the limit),
             push throughput, manifest HEAD and tags/list of a 10-tag repository.

    .venv/bin/python bench/workers.py workers --duration 20
    .venv/bin/python bench/workers.py peer --rounds 3

Prints Markdown tables; writes JSON to bench/results/ (gitignored). Figures are
in docs/deployment.md and docs/benchmarks.md ("Deployment behind nginx").
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
MIB = 1 << 20
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# -- processes ------------------------------------------------------------------------------

class Proc:
    """A process in its own session, stopped by its process group id."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.log = workdir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=cwd or workdir, start_new_session=True)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for _ in range(100):  # workers may outlive the master for a moment
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wait_http(url: str, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check()
        try:
            status, _, _ = request("GET", url, timeout=2)
            if status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{proc.tail()}")


def request(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 60):
    """One request on a new connection: (status, body, headers)."""
    host, port, path = split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


def split(url: str) -> tuple[str, int, str]:
    match = re.fullmatch(r"http://(127\.0\.0\.1|localhost):(\d+)(/.*)?", url)
    if not match:
        raise SystemExit(f"refusing non-loopback URL {url!r}")
    return match.group(1), int(match.group(2)), match.group(3) or "/"


def render_site(listen: int, upstream: int, blobs_dir: Path, access_log: str, name: str = "registry_ext",
                with_globals: bool = True) -> str:
    """deploy/nginx.conf with this run's port, upstream, blob folder and log (each found exactly once)."""
    text = (DEPLOY / "nginx.conf").read_text()
    for old, new in (("listen 80;", f"listen {HOST}:{listen};"),
                     ("server 127.0.0.1:5000;", f"server {HOST}:{upstream};"),
                     ("alias /var/lib/registry-ext/blobs/;", f"alias {blobs_dir}/;"),
                     ("access_log /var/log/nginx/registry-ext.access.log", f"access_log {access_log}")):
        if text.count(old) != 1:
            raise RuntimeError(f"deploy/nginx.conf: expected {old!r} exactly once")
        text = text.replace(old, new)
    if name != "registry_ext":
        text = text.replace("upstream registry_ext", f"upstream {name}")
        text = text.replace("http://registry_ext", f"http://{name}")
    if not with_globals:  # a second site in the same http {}: map and log_format exist already
        text = re.sub(r"\nmap \$http_x_request_id.*?\n}\n", "\n", text, flags=re.S)
        text = re.sub(r"\nlog_format registry_ext .*?;\n", "\n", text, flags=re.S)
    return text


class Stack:
    """redis-server + gunicorn (deploy/gunicorn.conf.py) + nginx (deploy/), optionally the peer."""

    def __init__(self, workdir: Path, gunicorn_args: list[str], accel: bool = True, peer: bool = False,
                 metrics: bool = True):
        self.dir = workdir
        self.procs: list[Proc] = []
        self.data = workdir / "data"
        self.data.mkdir(parents=True)
        self.gunicorn_port, self.nginx_port = free_port(), free_port()
        self.gunicorn_args = gunicorn_args
        self.accel = accel
        self.peer = peer
        self.metrics = metrics
        self.peer_port = self.peer_nginx_port = None

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

    def _start(self) -> None:
        # A unix socket, as deploy/registry.toml has it (no TCP port, no persistence: a benchmark).
        socket_path = self.dir / "redis.sock"
        redis = Proc("redis", ["redis-server", "--port", "0", "--unixsocket", str(socket_path),
                               "--unixsocketperm", "700", "--save", "", "--appendonly", "no"], self.dir)
        self.procs.append(redis)
        config = self.dir / "registry.toml"
        config.write_text(
            f'[server]\nhost = "{HOST}"\nport = {self.gunicorn_port}\ntrusted_proxies = 1\n'
            f'x_accel_prefix = "{"/_blobs" if self.accel else ""}"\n'
            f'[storage]\nroot = "{self.data}"\n'
            f'[redis]\nurl = "unix://{socket_path}"\n'
            f'[metrics]\nenabled = {str(self.metrics).lower()}\ndir = "{self.dir / "metrics"}"\n')
        env = dict(os.environ, REGISTRY_EXT_CONFIG=str(config), PYTHONUNBUFFERED="1")
        time.sleep(0.3)
        gunicorn = Proc("gunicorn", [str(VENV_BIN / "gunicorn"), "-c", str(DEPLOY / "gunicorn.conf.py"),
                                     *self.gunicorn_args, "wsgi:app"], self.dir, env=env, cwd=ROOT)
        self.procs.append(gunicorn)
        site = render_site(self.nginx_port, self.gunicorn_port, self.data / "blobs", "logs/access.log")
        if self.peer:
            self.peer_port, self.peer_nginx_port = free_port(), free_port()
            peer_root = self.dir / "peer"
            peer_root.mkdir()
            (self.dir / "peer.yml").write_text(PEER_CONFIG.format(root=peer_root, port=self.peer_port))
            env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
            peer = Proc("peer", ["docker-registry", "serve", str(self.dir / "peer.yml")], self.dir, env=env)
            self.procs.append(peer)
            site += "\n" + render_site(self.peer_nginx_port, self.peer_port, self.data / "blobs",
                                       "logs/peer-access.log", name="peer_registry", with_globals=False)
        run = self.dir / "nginx"
        (run / "logs").mkdir(parents=True)
        (run / "registry-ext.conf").write_text(site)
        main = (DEPLOY / "nginx-standalone.conf").read_text()
        if os.geteuid() == 0:  # workers would drop to `nobody`, which cannot read our temp dirs
            main = f"user {os.environ.get('USER', 'root')};\n" + main
        (run / "nginx.conf").write_text(main)
        nginx = Proc("nginx", ["nginx", "-p", str(run), "-c", str(run / "nginx.conf"), "-e", "stderr"], self.dir)
        self.procs.append(nginx)
        wait_http(self.url + "/readyz", gunicorn)  # through nginx, with Redis answering
        if "-k" in self.gunicorn_args:
            wanted = self.gunicorn_args[self.gunicorn_args.index("-k") + 1]
            if f"Using worker: {wanted}" not in gunicorn.log.read_text():
                raise RuntimeError(f"gunicorn is not running {wanted} workers:\n{gunicorn.tail()}")
        if self.peer:
            wait_http(self.peer_url + "/v2/", peer)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


PEER_CONFIG = """\
version: 0.1
log:
  level: warn
  formatter: text
storage:
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
health:
  storagedriver:
    enabled: false
"""


# -- registry operations ------------------------------------------------------------------

def blob_bytes(size: int, seed: int) -> bytes:
    """Deterministic, distinct per seed, fast: a random MiB with a counter in each MiB."""
    base = random.Random(seed).randbytes(MIB)
    return b"".join(i.to_bytes(8, "big") + base[8:] for i in range(size // MIB)) + base[:size % MIB]


def push_blob(base: str, repo: str, data: bytes) -> str:
    """POST, one PATCH with the whole body, PUT ?digest=: what docker and containerd do."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, _, headers = request("POST", f"{base}/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    assert status == 202, status
    location = urljoin(base + "/", headers["Location"])  # distribution's are absolute
    status, _, headers = request("PATCH", location, body=data, headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    assert status == 202, status
    location = urljoin(base + "/", headers["Location"])
    sep = "&" if "?" in location else "?"
    status, body, _ = request("PUT", f"{location}{sep}digest={digest}", headers={"Content-Length": "0"})
    assert status == 201, (status, body[:300])
    return digest


def populate(base: str, repo: str, pull_size: int) -> dict:
    """A 10-tag repository and one blob to pull; returns what the loads need."""
    config = b'{"architecture":"amd64","os":"linux"}'
    config_digest = push_blob(base, repo, config)
    pull_digest = push_blob(base, repo, blob_bytes(pull_size, seed=7))
    tags = [f"1.{i}.0" for i in range(10)]
    for i, tag in enumerate(tags):
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": config_digest, "size": len(config)},
                               "layers": [], "annotations": {"index": str(i)}}, sort_keys=True).encode()
        status, body, _ = request("PUT", f"{base}/v2/{repo}/manifests/{tag}", body=manifest,
                                  headers={"Content-Type": MANIFEST})
        assert status == 201, (status, body[:300])
    return {"repo": repo, "tags": tags, "pull": pull_digest, "pull_size": pull_size}


class Client:
    """One keep-alive connection (reconnects after errors)."""

    def __init__(self, base: str, timeout: float = 30):
        self.host, self.port, _ = split(base + "/")
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _conn(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def small(self, method: str, path: str, headers: dict | None = None) -> int:
        for attempt in (0, 1):  # once more when the server closed an idle keep-alive connection
            reused = self.conn is not None
            try:
                conn = self._conn()
                conn.request(method, path, headers=headers or {})
                resp = conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.close()
                return resp.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt or not reused:
                    raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        raise AssertionError("unreachable")

    def pull(self, path: str, buf: bytearray) -> int:
        """GET a blob, reading into ``buf`` (no copies kept); returns the bytes read."""
        try:
            conn = self._conn()
            conn.request("GET", path)
            resp = conn.getresponse()
            if resp.status != 200:
                resp.read()
                raise OSError(f"GET {path}: {resp.status}")
            view, total = memoryview(buf), 0
            while n := resp.readinto(view):
                total += n
            if resp.will_close:
                self.close()
            return total
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class SplicePuller:
    """Blob GETs on one keep-alive connection whose bodies never enter this process.

    ``os.splice`` moves the body from the socket into a pipe and from the pipe into
    /dev/null inside the kernel, so the load generator (on the same 2 cores) costs
    almost no CPU and the servers, not the client, bound the measured throughput.
    The byte count is still checked against Content-Length.
    """

    def __init__(self, base: str, timeout: float = 60):
        self.host, self.port, _ = split(base + "/")
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.pipe_r, self.pipe_w = os.pipe()
        with contextlib.suppress(OSError):
            import fcntl
            fcntl.fcntl(self.pipe_w, 1031, MIB)  # F_SETPIPE_SZ: 1 MiB per splice
        self.null = os.open(os.devnull, os.O_WRONLY)

    def pull(self, path: str) -> int:
        """GET a blob; returns its length (the body went to /dev/null)."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                self.sock.setblocking(True)  # splice on a non-blocking socket fails with EAGAIN;
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,  # a timeout it honours
                                     struct.pack("ll", int(self.timeout), 0))
            self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                piece = self.sock.recv(65536)
                if not piece:
                    raise OSError("connection closed before the response headers")
                head += piece
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            if lines[0].split()[1] != "200":
                raise OSError(f"GET {path}: {lines[0]}")
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(fields["content-length"])
            remaining, fd = length - len(rest), self.sock.fileno()
            while remaining > 0:
                moved = os.splice(fd, self.pipe_w, min(remaining, MIB))
                if moved == 0:
                    raise OSError("connection closed in the body")
                remaining -= moved
                while moved:
                    moved -= os.splice(self.pipe_r, self.null, moved)
            if fields.get("connection", "").lower() == "close":
                self.close()
            return length
        except (OSError, ValueError, KeyError, IndexError):
            self.close()
            raise OSError(f"GET {path} failed") from None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_threads(count: int, target, *args) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i, *args), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


# -- the mixed load (workers) ---------------------------------------------------------------

def slow_upload(index: int, base: str, repo: str, stop: threading.Event, out: dict) -> None:
    """A client on a slow link: a chunked PATCH body of 16 KiB every 0.25 s until ``stop``.

    Records whether the upload was accepted (202) and how long the answer took after the
    last byte (a worker or thread that never got to it shows here).
    """
    host, port, _ = split(base + "/")
    try:
        status, _, headers = request("POST", f"{base}/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        if status != 202:
            raise OSError(f"POST {status}")
        with socket.create_connection((host, port), timeout=60) as sock:
            sock.sendall((f"PATCH {headers['Location']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
            piece = os.urandom(16 * 1024)
            while not stop.wait(0.25):
                sock.sendall(b"4000\r\n" + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
            t0 = time.perf_counter()
            reply = sock.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        out[index] = {"ok": " 202 " in reply, "finish_s": time.perf_counter() - t0, "reply": reply}
    except OSError as exc:
        out[index] = {"ok": False, "finish_s": float("nan"), "reply": f"error: {exc}"}


def mixed_load(base: str, fixture: dict, duration: float, small_threads: int, pull_threads: int,
               slow: int) -> dict:
    """Rates count what completed inside the ``duration`` window; a request stuck behind a
    blocked worker shows as a stall (> 1 s) or an error (client timeout 5 s small, 30 s pull)."""
    repo = fixture["repo"]
    stop, slow_stop = threading.Event(), threading.Event()
    slow_out: dict = {}
    slow_threads = run_threads(slow, slow_upload, base, repo, slow_stop, slow_out)
    time.sleep(1.0)  # the slow clients hold their workers / threads before the clock starts
    threads: list[threading.Thread] = []
    lat: list[list[float]] = [[] for _ in range(small_threads)]
    errors = [0] * (small_threads + pull_threads)
    pulled = [0] * pull_threads
    deadline = time.perf_counter() + duration

    def small(i: int) -> None:
        client, rng = Client(base, timeout=5), random.Random(i)
        while not stop.is_set():
            tag = rng.choice(fixture["tags"])
            path = f"/v2/{repo}/manifests/{tag}" if rng.random() < 0.5 else f"/v2/{repo}/tags/list"
            t0 = time.perf_counter()
            try:
                ok = client.small("HEAD" if "manifests" in path else "GET", path, {"Accept": MANIFEST}) == 200
            except (OSError, http.client.HTTPException):
                ok = False
            done = time.perf_counter()
            if done > deadline:
                break
            if ok:
                lat[i].append(done - t0)
            else:
                errors[i] += 1
        client.close()

    def pull(i: int) -> None:
        client, buf = Client(base, timeout=30), bytearray(MIB)
        path = f"/v2/{repo}/blobs/{fixture['pull']}"
        while not stop.is_set():
            try:
                n = client.pull(path, buf)
            except (OSError, http.client.HTTPException):
                errors[small_threads + i] += 1
                continue
            if time.perf_counter() > deadline:
                break
            pulled[i] += n
        client.close()

    try:
        threads = run_threads(small_threads, small) + run_threads(pull_threads, pull)
        stop.wait(duration)
    finally:  # also on Ctrl-C: let every client finish before the servers stop
        stop.set()
        for thread in threads:
            thread.join(60)
        slow_stop.set()
        for thread in slow_threads:
            thread.join(90)
    all_lat = sorted(x for per in lat for x in per)
    pct = (lambda p: 1000 * all_lat[min(len(all_lat) - 1, int(p * len(all_lat)))] if all_lat else float("nan"))
    finished = [slow_out.get(i, {"ok": False, "finish_s": float("nan")}) for i in range(slow)]
    return {
        "small_ops_s": len(all_lat) / duration, "small_p50_ms": pct(0.50), "small_p99_ms": pct(0.99),
        "small_stalls": sum(1 for x in all_lat if x > 1.0), "pull_mib_s": sum(pulled) / MIB / duration,
        "errors": sum(errors), "slow_ok": sum(1 for f in finished if f["ok"]),
        "slow_finish_max_s": max((f["finish_s"] for f in finished), default=0.0),
        "slow_replies": sorted({slow_out.get(i, {}).get("reply", "none") for i in range(slow)}),
    }


CANDIDATES = {
    # --threads 1: gunicorn silently runs gthread for "sync" with threads > 1 (the config's default)
    "sync-5": ["-k", "sync", "--workers", "5", "--threads", "1"],
    "sync-16": ["-k", "sync", "--workers", "16", "--threads", "1"],
    "gthread-4x4": ["-k", "gthread", "--workers", "4", "--threads", "4"],
    "gthread-2x16": ["-k", "gthread", "--workers", "2", "--threads", "16"],
    "gthread-4x16": ["-k", "gthread", "--workers", "4", "--threads", "16"],
    "gthread-2x32": ["-k", "gthread", "--workers", "2", "--threads", "32"],
    "gevent-2": ["-k", "gevent", "--workers", "2", "--worker-connections", "1000"],
}


def busy_cores(window: float = 2.0) -> float:
    """CPU cores busy on the whole machine over ``window`` seconds (/proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            values = [int(x) for x in fh.readline().split()[1:9]]
        return values[3] + values[4], sum(values)
    idle0, total0 = sample()
    time.sleep(window)
    idle1, total1 = sample()
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def wait_quiet(max_seconds: float, threshold: float = 0.3) -> dict:
    """Wait (bounded) until the machine is idle, so other work does not skew a measurement."""
    started, samples = time.monotonic(), []
    while True:
        samples.append(round(busy_cores(), 2))
        if samples[-1] < threshold:
            return {"quiet": True, "waited_s": round(time.monotonic() - started), "busy": samples[-3:]}
        if time.monotonic() - started > max_seconds:
            print(f"warning: machine still busy ({samples[-1]} cores) after {max_seconds:.0f} s", flush=True)
            return {"quiet": False, "waited_s": round(time.monotonic() - started), "busy": samples[-3:]}


def cmd_workers(args) -> dict:
    names = args.candidates or list(CANDIDATES)
    try:
        import gevent  # noqa: F401
    except ImportError:
        skipped = [n for n in names if n.startswith("gevent")]
        names = [n for n in names if not n.startswith("gevent")]
        if skipped:
            print(f"gevent is not installed: skipping {', '.join(skipped)} (pip install gevent)")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for rnd in range(args.rounds):
        for name in (names if rnd % 2 == 0 else names[::-1]):
            workdir = Path(tempfile.mkdtemp(prefix=f"bench-workers-{name}-"))
            stack = Stack(workdir, CANDIDATES[name], accel=args.mode == "accel").start()
            try:
                fixture = populate(stack.url, "bench/workers", args.pull_mib * MIB)
                quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
                result = mixed_load(stack.url, fixture, args.duration, args.small, args.pulls, args.slow)
                result["quiet"] = quiet
                runs[name].append(result)
            finally:
                stack.stop()
                shutil.rmtree(workdir, ignore_errors=True)
            print(f"round {rnd + 1} {name}: {result}", flush=True)
    results = {}
    for name, got in runs.items():
        med = {key: statistics.median(r[key] for r in got)
               for key in ("small_ops_s", "small_p50_ms", "small_p99_ms", "pull_mib_s", "slow_finish_max_s")}
        med.update(small_stalls=sum(r["small_stalls"] for r in got), errors=sum(r["errors"] for r in got),
                   slow_ok=sum(r["slow_ok"] for r in got), runs=got)
        results[name] = med
    print(f"\nMixed load, mode={args.mode}, median of {args.rounds} runs of {args.duration:.0f} s "
          f"(errors, stalls and slow uploads summed over the runs): {args.small} threads of small "
          f"requests (manifest HEAD / tags/list), {args.pulls} pulling a {args.pull_mib} MiB blob, "
          f"{args.slow} slow uploaders (64 KiB/s each, chunked)\n")
    print("| workers | small req/s | p50 ms | p99 ms | stalls > 1 s | pull MiB/s | errors "
          "| slow uploads ok | slow answer max s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['small_ops_s']:.0f} | {r['small_p50_ms']:.1f} | {r['small_p99_ms']:.0f} | "
              f"{r['small_stalls']} | {r['pull_mib_s']:.0f} | {r['errors']} | "
              f"{r['slow_ok']}/{args.slow * args.rounds} | {r['slow_finish_max_s']:.2f} |")
    return results


# -- ours vs docker-registry (peer) -------------------------------------------------------

ERROR_SAMPLES: list[str] = []


def timed(duration: float, threads: int, op) -> tuple[float, int, int]:
    """Run ``op(i)`` -> units in ``threads`` threads for ``duration`` s: (units/s, ops, errors)."""
    stop = threading.Event()
    units, ops, errors = [0] * threads, [0] * threads, [0] * threads

    def loop(i: int) -> None:
        while not stop.is_set():
            try:
                units[i] += op(i)
                ops[i] += 1
            except (OSError, AssertionError, http.client.HTTPException) as exc:
                errors[i] += 1
                if len(ERROR_SAMPLES) < 20:
                    ERROR_SAMPLES.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)

    started = time.perf_counter()
    workers = run_threads(threads, loop)
    stop.wait(duration)
    stop.set()
    for worker in workers:
        worker.join(120)
    return sum(units) / (time.perf_counter() - started), sum(ops), sum(errors)


def cmd_peer(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-peer-nginx-"))
    stack = Stack(workdir, [], accel=True, peer=True).start()
    push_pool = [blob_bytes(args.push_mib * MIB, seed=100 + i) for i in range(args.concurrency * 2)]
    results: dict = {}
    try:
        sides = {"ours": stack.url, "peer": stack.peer_url}
        fixtures = {side: populate(url, "bench/deploy", args.pull_mib * MIB) for side, url in sides.items()}
        assert fixtures["ours"]["pull"] == fixtures["peer"]["pull"]
        for side, url in sides.items():  # same answers before timing
            status, body, headers = request("GET", f"{url}/v2/bench/deploy/tags/list")
            assert status == 200 and sorted(json.loads(body)["tags"]) == fixtures[side]["tags"], (side, body)
            status, _, headers = request("HEAD", f"{url}/v2/bench/deploy/blobs/{fixtures[side]['pull']}")
            assert status == 200 and int(headers["Content-Length"]) == args.pull_mib * MIB, (side, headers)

        def ops(base: str, fixture: dict) -> dict:
            clients = [Client(base) for _ in range(args.concurrency)]
            pullers = [SplicePuller(base) for _ in range(args.concurrency)]
            rng = [random.Random(i) for i in range(args.concurrency)]
            blob_path = f"/v2/{fixture['repo']}/blobs/{fixture['pull']}"
            pushes = [0] * args.concurrency

            def push(i: int) -> int:
                data = push_pool[(i + pushes[i] * args.concurrency) % len(push_pool)]
                pushes[i] += 1
                push_blob(base, "bench/push", data)
                return len(data)

            def small(i: int, method: str, path: str) -> int:
                if clients[i].small(method, path, {"Accept": MANIFEST}) != 200:
                    raise AssertionError(f"{method} {path}")
                return 1

            def reset() -> None:  # fresh connections per timed run: nginx closes idle ones after 75 s
                for conn in (*clients, *pullers):
                    conn.close()

            repo = fixture["repo"]
            return {
                "reset": reset,
                "pull_mib_s": lambda i: pullers[i].pull(blob_path) / MIB,
                "push_mib_s": lambda i: push(i) / MIB,
                "manifest_head_req_s": lambda i: small(
                    i, "HEAD", f"/v2/{repo}/manifests/{rng[i].choice(fixture['tags'])}"),
                "tags_list_req_s": lambda i: small(i, "GET", f"/v2/{repo}/tags/list"),
            }

        table = {side: ops(url, fixtures[side]) for side, url in sides.items()}
        for name in args.ops:
            figures: dict = {"ours": [], "peer": []}
            for rnd in range(args.rounds):
                order = ("ours", "peer") if rnd % 2 == 0 else ("peer", "ours")
                for side in order:
                    if args.wait_quiet:
                        wait_quiet(args.wait_quiet)
                    table[side]["reset"]()
                    duration = args.duration * (1.5 if name == "push_mib_s" else 1)
                    rate, count, errors = timed(duration, args.concurrency, table[side][name])
                    figures[side].append({"rate": rate, "ops": count, "errors": errors})
                    print(f"{name} round {rnd + 1} {side}: {rate:.1f} ({count} ops, {errors} errors)", flush=True)
            ours = statistics.median(f["rate"] for f in figures["ours"])
            peer = statistics.median(f["rate"] for f in figures["peer"])
            results[name] = {"ours": ours, "peer": peer, "ratio": ours / peer if peer else float("inf"),
                             "rounds": figures}
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if ERROR_SAMPLES:
        print("error samples:", *ERROR_SAMPLES, sep="\n  ")
    print(f"\nThrough nginx (deploy/nginx.conf), {args.concurrency} client threads, median of {args.rounds} "
          f"rounds of {args.duration:.0f} s; pull blob {args.pull_mib} MiB, pushed blobs {args.push_mib} MiB\n")
    print("| operation | registry-ext | docker-registry 2.8 | ratio |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['ours']:.1f} | {r['peer']:.1f} | {r['ratio']:.2f}x |")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("workers", help="compare gunicorn worker classes under a mixed load")
    w.add_argument("--candidates", nargs="*", choices=list(CANDIDATES), help="default: all")
    w.add_argument("--duration", type=float, default=20.0)
    w.add_argument("--small", type=int, default=4, help="threads of small requests")
    w.add_argument("--pulls", type=int, default=2, help="threads pulling a blob")
    w.add_argument("--pull-mib", type=int, default=64)
    w.add_argument("--slow", type=int, default=8, help="slow uploaders")
    w.add_argument("--mode", choices=("accel", "app"), default="accel",
                   help="accel: nginx sends blobs (X-Accel-Redirect); app: gunicorn streams them")
    w.add_argument("--rounds", type=int, default=2, help="runs per candidate, interleaved")
    w.add_argument("--wait-quiet", type=float, default=120.0,
                   help="before each run wait up to S s for an idle machine (0: do not wait)")
    p = sub.add_parser("peer", help="ours vs docker-registry, both behind nginx")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--pull-mib", type=int, default=256)
    p.add_argument("--push-mib", type=int, default=64)
    p.add_argument("--ops", nargs="*", default=["pull_mib_s", "push_mib_s", "manifest_head_req_s", "tags_list_req_s"],
                   choices=["pull_mib_s", "push_mib_s", "manifest_head_req_s", "tags_list_req_s"])
    p.add_argument("--wait-quiet", type=float, default=120.0,
                   help="before each timed run wait up to S s for an idle machine (0: do not wait)")
    args = parser.parse_args()
    for tool in ("nginx", "redis-server") + (("docker-registry",) if args.command == "peer" else ()):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    results = cmd_workers(args) if args.command == "workers" else cmd_peer(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"workers-{args.command}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))
    print(f"\nJSON: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
