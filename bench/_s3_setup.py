"""The servers of ``bench/s3.py``: one Ceph RGW (tests/support/s3server), the peer on it twice and ours on
it twice (not a script).

Each side is one registry on its own bucket served by two processes: a *proxy* one, whose blob ``GET``
sends the bytes itself, and a *redirect* one, whose blob ``GET`` answers ``307`` to a presigned URL.
Pushes go through the proxy process; the redirect process reads what it wrote.

- The peer (``docker-registry`` 2.8): ``storage.s3`` with ``regionendpoint`` (2.8 then addresses the
  bucket path-style by itself: it has no ``forcepathstyle`` key), ``secure: false``, ``v4auth: true``,
  ``chunksize`` = ours' ``part_size`` (16 MiB; its default is 10 MiB), ``rootdirectory: /``; the proxy
  process has ``redirect: disable: true``, the other the default (redirect). Both stateless apart from the
  ``inmemory`` descriptor cache, so two processes on one bucket are one registry. ``AWS_CA_BUNDLE`` is
  removed from its environment: with it set, 2.8's AWS SDK refuses to start (``LoadCustomCABundleError``).
- Ours (``registry-ext serve``, 4 workers): ``[storage] driver = "s3"`` with ``redirect = false``; the
  redirect process (``redirect = true``) is a second host of the same registry: same bucket, and the first
  one's embedded Redis (its unix socket), as docs/deployment.md's several hosts share one Redis. Run with
  this checkout's code (``PYTHONPATH``), whichever venv the binary comes from.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.peer import OURS_BINARY, PEER_BINARY, _spawn_registry, start_ours, wait_ready
from bench._common import free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PART_SIZE = 16 << 20

PEER_S3_CONFIG = """\
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: {access_key}
    secretkey: {secret_key}
    region: {region}
    regionendpoint: {endpoint}
    bucket: {bucket}
    rootdirectory: /
    secure: false
    v4auth: true
    chunksize: {chunk}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  redirect:
    disable: {no_redirect}
http:
  addr: 127.0.0.1:{port}
  secret: bench-s3-shared-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
"""


def default_ours_binary() -> str:
    """This checkout's venv's ``registry-ext``, else the one beside the running interpreter."""
    if os.path.exists(OURS_BINARY):
        return OURS_BINARY
    return os.path.join(os.path.dirname(sys.executable), "registry-ext")


def start_peer_s3(s3, bucket: str, redirect: bool, timeout: float = 30.0):
    """``docker-registry serve`` on ``bucket`` (see the module docstring)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-s3peer-")
    config = os.path.join(workdir, "config.yml")
    with open(config, "w") as fh:
        fh.write(PEER_S3_CONFIG.format(access_key=s3.access_key, secret_key=s3.secret_key, region=s3.region,
                                       endpoint=s3.endpoint, bucket=bucket, chunk=PART_SIZE, port=port,
                                       no_redirect="false" if redirect else "true"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_") and k != "AWS_CA_BUNDLE"}
    server = _spawn_registry("peer", [PEER_BINARY, "serve", config], port, workdir, workdir, env)
    wait_ready(server, timeout)
    return server


def ours_toml(path: str, s3, bucket: str, redirect: bool, prefix: str = "") -> str:
    """Write ours' config (docs/configuration.md ``[storage.s3]``); return its path."""
    values = {"bucket": bucket, "prefix": prefix, "endpoint_url": s3.endpoint, "region": s3.region,
              "path_style": True, "access_key": s3.access_key, "secret_key": s3.secret_key,
              "part_size": PART_SIZE, "redirect": redirect}
    lines = ["[storage]", 'driver = "s3"', "", "[storage.s3]"]
    for key, value in values.items():
        lines.append(f"{key} = " + (str(value).lower() if isinstance(value, bool) else
                                    str(value) if isinstance(value, int) else f'"{value}"'))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def start_ours_s3(s3, bucket: str, redirect: bool, workers: int, binary: str, redis_url: str | None = None,
                  prefix: str = "", key_prefix: str | None = None):
    """``registry-ext serve --config`` on ``bucket`` (under ``prefix``); its embedded Redis unless
    ``redis_url`` (under ``key_prefix`` if given)."""
    fd, config = tempfile.mkstemp(prefix="bench-s3ours-", suffix=".toml")
    os.close(fd)
    ours_toml(config, s3, bucket, redirect, prefix)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    server = start_ours(workers=workers, binary=binary, redis_url=redis_url, env=env,
                        extra_args=["--config", config] + (["--key-prefix", key_prefix] if key_prefix else []))
    server.config_path = config
    return server


@dataclasses.dataclass
class Side:
    """One registry on S3: ``proxy`` sends blob bytes itself, ``redirect`` answers 307 (same bucket)."""
    name: str
    bucket: str
    proxy: object
    redirect: object

    @property
    def pgids(self) -> list[int]:
        return [self.proxy.pgid, self.redirect.pgid]


def rgw_log(s3) -> str:
    """radosgw's log, with one access line a request (bench/_s3_log.py)."""
    return str(Path(s3.dir) / "log" / "client.rgw.s3.log")


def rgw_pids(s3) -> list[int]:
    """The Ceph daemons' PIDs (ceph-mon, ceph-osd, radosgw) from start.sh's PID file."""
    path = Path(s3.dir) / "run" / "daemons.pid"
    return [int(x) for x in path.read_text().split() if x.isdigit()]


def pids_cpu_seconds(pids: list[int]) -> float | None:
    """utime+stime (all threads) of these processes, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                rest = fh.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])
        except (OSError, IndexError, ValueError):
            return None
    return total / ticks


@contextlib.contextmanager
def rgw(store_gb: int, keep: bool = False):
    """Start a Ceph RGW under a new temp dir; yield its ``S3Server``; stop it and remove the dir unless
    ``keep``."""
    from tests.support import s3server

    top = tempfile.mkdtemp(prefix="bench-s3-")
    os.environ.setdefault("S3_STORE_SIZE_GB", str(store_gb))
    try:
        yield s3server.start(Path(top) / "rgw")
    finally:
        if not keep:
            s3server.stop(Path(top) / "rgw")
            shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def private_redis(workdir: str):
    """A throwaway ``redis-server`` on a unix socket under ``workdir`` (no persistence); yield
    (``unix://`` URL, its Popen)."""
    sock = os.path.join(os.path.abspath(workdir), "redis.sock")
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"unix://{sock}", proc
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def s3_stack(workers: int, binary: str, store_gb: int, keep: bool = False):
    """Start RGW, then both sides; yield (s3 server, {"ours": Side, "peer": Side}); stop all of it."""
    with rgw(store_gb, keep) as s3, _sides(s3, workers, binary) as sides:
        yield s3, sides


@contextlib.contextmanager
def _sides(s3, workers: int, binary: str):
    started = []
    try:
        peer_bucket, ours_bucket = s3.new_bucket("peer"), s3.new_bucket("ours")
        started.append(start_peer_s3(s3, peer_bucket, redirect=False))
        started.append(start_peer_s3(s3, peer_bucket, redirect=True))
        ours = start_ours_s3(s3, ours_bucket, False, workers, binary)
        started.append(ours)
        sock = os.path.join(os.path.abspath(ours.data_dir), "redis", "redis.sock")
        started.append(start_ours_s3(s3, ours_bucket, True, workers, binary, redis_url=f"unix://{sock}"))
        yield {"peer": Side("peer", peer_bucket, started[0], started[1]),
               "ours": Side("ours", ours_bucket, started[2], started[3])}
    finally:
        for server in reversed(started):
            stop_ours(server)


def stop_ours(server) -> None:
    """Stop a server from ``start_ours_s3`` (or the peer's) and remove its config file."""
    server.stop()
    with contextlib.suppress(AttributeError, OSError):
        os.unlink(server.config_path)
