"""Clients and load helpers of the deployment benchmarks (``workers.py``), on ``http.client`` and raw sockets.

Not a script. One-shot requests, a blob push and the 10-tag fixture both commands populate, a keep-alive
client for small requests and blob pulls, a pull client that splices bodies to /dev/null, threads, and the
wait for an idle machine. Only loopback URLs are accepted.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import socket
import struct
import threading
from urllib.parse import urljoin

from bench._common import OCI_MANIFEST as MANIFEST, FastClient, wait_for_quiet
MIB = 1 << 20


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


# -- clients ------------------------------------------------------------------------------

class Client(FastClient):
    """One keep-alive connection (reconnects after errors): small requests and blob pulls."""

    def __init__(self, base: str, timeout: float = 30):
        super().__init__(base, timeout)

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
            fields, rest = self._head(path)
            length = int(fields["content-length"])
            self._splice_body(length - len(rest))
            if fields.get("connection", "").lower() == "close":
                self.close()
            return length
        except (OSError, ValueError, KeyError, IndexError):
            self.close()
            raise OSError(f"GET {path} failed") from None

    def _head(self, path: str) -> tuple[dict, bytes]:
        """Read the status line and headers (a 200 is required); returns the fields and the body bytes read."""
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
        return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}, rest

    def _splice_body(self, remaining: int) -> None:
        fd = self.sock.fileno()
        while remaining > 0:
            moved = os.splice(fd, self.pipe_w, min(remaining, MIB))
            if moved == 0:
                raise OSError("connection closed in the body")
            remaining -= moved
            while moved:
                moved -= os.splice(self.pipe_r, self.null, moved)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_threads(count: int, target, *args) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i, *args), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def wait_quiet(max_seconds: float) -> dict:
    """Wait (bounded) until the machine is idle (``_common.wait_for_quiet``), so other work does not skew a
    measurement; warns when it stays busy. Returns quiet, seconds waited and the last busy-core samples."""
    seen = wait_for_quiet(max_seconds)
    if seen["quiet"] is False:
        print(f"warning: machine still busy ({seen['samples'][-1]} cores) after {max_seconds:.0f} s", flush=True)
    return {"quiet": seen["quiet"], "waited_s": round(seen.get("waited_s", 0)), "busy": seen["samples"][-3:]}
