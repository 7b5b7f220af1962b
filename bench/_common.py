"""Small helpers shared by the bench scripts (stdlib + requests only).

Not a script: the scripts import it as ``bench._common``.
"""
from __future__ import annotations

import http.client
import math
import os
import socket
import subprocess
import threading
import time
import urllib.parse

import requests
from requests.adapters import HTTPAdapter

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_V2])

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(BENCH_DIR, "results")

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def short_commit() -> str:
    """The checked-out commit (short id) the figures belong to; "unknown" outside a git checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_loopback(url: str) -> str:
    """Refuse any target that is not a loopback address; return the URL without a trailing slash."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing non-loopback target {url!r} (only 127.0.0.1 / localhost allowed)")
    return url.rstrip("/")


class SessionPool:
    """One keep-alive ``requests.Session`` per thread."""

    def __init__(self, pool_size: int = 4):
        self._local = threading.local()
        self._pool_size = pool_size
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self._pool_size, max_retries=0)
            sess.mount("http://", adapter)
            sess.trust_env = False  # never route loopback traffic through a proxy from the environment
            self._local.session = sess
            with self._lock:
                self._all.append(sess)
        return sess

    def close(self) -> None:
        with self._lock:
            for sess in self._all:
                sess.close()
            self._all.clear()


class FastClient:
    """A minimal keep-alive HTTP/1.1 client on ``http.client`` for the timed loops.

    ``requests`` costs ~1 ms of client CPU per request on this class of machine (measured: 420 req/s
    sequential vs 830 req/s with http.client against the same server), which would make the load
    generator, not the server, the bottleneck. One instance per thread; reconnects after errors.
    """

    def __init__(self, base_url: str, timeout: float = 60.0):
        parsed = urllib.parse.urlsplit(check_loopback(base_url))
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.timeout = timeout
        self.conn = None
        self.last_status = None

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
        """Return (status, body bytes, headers message). Retries once on a dropped keep-alive connection."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                body = resp.read()
                self.last_status = resp.status
                if resp.will_close:
                    self.close()
                return resp.status, body, resp.headers
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
            except Exception:
                self.close()
                raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def next_link(resp_or_header, base_url: str) -> str | None:
    """The absolute URL of an RFC 5988 ``Link: <...>; rel="next"`` header, if any.

    Accepts a ``requests.Response`` or the header value itself (or None).
    """
    header = resp_or_header
    if header is not None and not isinstance(header, str):
        header = header.headers.get("Link")
    if not header:
        return None
    for part in header.split(","):
        part = part.strip()
        if 'rel="next"' not in part and "rel=next" not in part:
            continue
        if part.startswith("<") and ">" in part:
            target = part[1:part.index(">")]
            return urllib.parse.urljoin(base_url + "/", target)
    return None


def proc_tree_cpu_seconds(pgid: int | None) -> float | None:
    """User+system CPU seconds of every live process in process group ``pgid`` (Linux /proc).

    Children that already exited are not counted, which is fine for long-lived servers.
    """
    if pgid is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        # comm may contain spaces/parens: split after the last ')'
        rest = data[data.rfind(")") + 2:].split()
        # rest[0]=state, rest[1]=ppid, rest[2]=pgrp, ..., rest[11]=utime, rest[12]=stime
        try:
            if int(rest[2]) != pgid:
                continue
            total += int(rest[11]) + int(rest[12])
        except (IndexError, ValueError):
            continue
    return total / ticks


def system_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores; /proc/stat minus idle and iowait)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    vals = [int(x) for x in fields[:8]]          # user nice system idle iowait irq softirq steal
    busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + vals[7]
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_seconds: float, threshold_cores: float = 0.3, window: float = 2.0) -> dict:
    """Wait (at most ``max_seconds``) until the machine is idle: busy CPU < ``threshold_cores`` over a
    ``window``-second sample. Returns what was seen; never raises."""
    seen = []
    deadline = time.monotonic() + max_seconds
    for _ in range(int(max_seconds / window) + 1):
        b0 = system_busy_seconds()
        time.sleep(window)
        b1 = system_busy_seconds()
        if b0 is None or b1 is None:
            return {"quiet": None, "samples": seen}
        busy = (b1 - b0) / window
        seen.append(round(busy, 2))
        if busy < threshold_cores:
            return {"quiet": True, "samples": seen[-5:], "waited_s": round(window * len(seen), 1)}
        if time.monotonic() > deadline:
            break
    return {"quiet": False, "samples": seen[-5:], "waited_s": round(window * len(seen), 1)}


def proc_tree_rss_mb(pgid: int | None) -> float | None:
    """Resident memory (MiB) summed over the live processes of process group ``pgid``."""
    if pgid is None:
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read().decode("ascii", "replace")
            if int(data[data.rfind(")") + 2:].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total / (1024 * 1024)


def dir_size_mb(path: str, max_files: int = 1_000_000) -> float:
    total = 0
    count = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            count += 1
            if count > max_files:
                return total / (1024 * 1024)
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total / (1024 * 1024)


def fmt_num(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


# --------------------------------------------------------------------------------------------------
# the embedded redis of ours (``<data>/redis/redis.sock``), read with redis-cli (no client library)

REDIS_CLI = "/usr/bin/redis-cli"


def redis_cli(sock: str, args: list[str], stdin: str | None = None, timeout: float = 300.0) -> str:
    """Run ``redis-cli -s sock ARGS`` (commands on stdin when given); return its stdout."""
    out = subprocess.run([REDIS_CLI, "-s", sock, *args], input=stdin, capture_output=True, text=True,
                         timeout=timeout, check=True)
    return out.stdout


def redis_info_memory(sock: str) -> dict:
    """``INFO memory`` as a dict (integers where the value is one)."""
    info = {}
    for line in redis_cli(sock, ["info", "memory"]).splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.strip().partition(":")
            info[key] = int(value) if value.lstrip("-").isdigit() else value
    return info


def redis_key_usage(sock: str, pattern: str = "*", max_keys: int = 2_000_000) -> list[tuple[str, str, int]]:
    """Every key matching ``pattern`` (``redis-cli --scan``) with its ``TYPE`` and ``MEMORY USAGE ... SAMPLES 0``
    (exact: every element is counted). Keys holding whitespace or quotes are skipped (none in the schema)."""
    found = redis_cli(sock, ["--scan", "--pattern", pattern]).splitlines()
    # SCAN may repeat keys
    keys = list(dict.fromkeys(k for k in found if k and not any(c in k for c in " \t\"'")))[:max_keys]
    script = "".join(f"TYPE {k}\nMEMORY USAGE {k} SAMPLES 0\n" for k in keys)
    lines = redis_cli(sock, [], stdin=script).splitlines()
    if len(lines) != 2 * len(keys):
        raise RuntimeError(f"redis-cli answered {len(lines)} lines for {2 * len(keys)} commands")
    return [(k, lines[2 * i], int(lines[2 * i + 1] or 0)) for i, k in enumerate(keys)]
