"""The servers and clients bench/mirror.py measures: one upstream, relays, our mirror, the peer in proxy mode.

::

    upstream U (docker-registry) <- relay "linked" (paced, --link-rate: stands for a real link)
                                 <- relay "counted" (unpaced, counts upstream GETs per path)
    ours M (registry-ext serve, [proxy]): host direct.bench -> U, linked.bench -> linked, counted.bench -> counted
    peer P_direct (docker-registry, proxy.remoteurl = U), P_counted (proxy.remoteurl = counted)

The relays are tests/support/relay.py run as separate processes (away from the client's GIL). Pulls are
timed with ``http.client`` (``fetch``): time to the first body byte, then the whole body read into a
reused buffer (no hashing in the timed pass; ``verify`` hashes separately).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from bench._common import free_port
from bench.peer import PEER_BINARY, Server, _spawn_registry, peer_config, spawn, start_ours, start_peer, wait_ready

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BUF = bytearray(1 << 20)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_bytes(size: int, seed: str) -> bytes:
    """``size`` incompressible bytes, different for every seed."""
    return random.Random(seed).randbytes(size)


@dataclass
class Pull:
    ttfb: float     # seconds to the first body byte
    seconds: float  # seconds to the last byte
    size: int
    status: int

    @property
    def mib_s(self) -> float:
        return self.size / (1 << 20) / self.seconds if self.seconds else 0.0


def fetch(url: str, accept: str = "") -> Pull:
    """GET ``url`` on a fresh connection; times the first byte and the whole body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     headers={"Accept": accept} if accept else {})
        resp = conn.getresponse()
        view, size, ttfb = memoryview(BUF), 0, None
        while True:
            n = resp.readinto(view)
            if ttfb is None:
                ttfb = time.perf_counter() - started
            if not n:
                break
            size += n
        return Pull(ttfb or 0.0, time.perf_counter() - started, size, resp.status)
    finally:
        conn.close()


def verify(url: str, digest: str) -> None:
    """Hash what ``url`` answers; SystemExit when it is not ``digest`` (a benchmark of wrong bytes is void)."""
    hasher = hashlib.sha256()
    with requests.get(url, stream=True, timeout=300) as resp:
        for piece in resp.iter_content(1 << 20):
            hasher.update(piece)
    if resp.status_code != 200 or "sha256:" + hasher.hexdigest() != digest:
        raise SystemExit(f"wrong answer from {url}: HTTP {resp.status_code}, sha256:{hasher.hexdigest()}")


def push_blob(base: str, repo: str, data: bytes) -> str:
    digest = sha256(data)
    with requests.Session() as sess:
        sess.trust_env = False
        resp = sess.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=60)
        resp.raise_for_status()
        location = resp.headers["Location"]
        location = location if "://" in location else base + location
        sep = "&" if "?" in location else "?"
        resp = sess.put(f"{location}{sep}digest={digest}", data=data, timeout=600,
                        headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            raise SystemExit(f"push to {base}/{repo} refused: {resp.status_code} {resp.text[:300]}")
    return digest


def push_image(base: str, repo: str, tag: str, layers: list[bytes]) -> dict:
    """Push a config, ``layers`` and an OCI manifest; return {"manifest": digest, "blobs": [digests]}."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]}}).encode()
    blobs = [push_blob(base, repo, data) for data in [config, *layers]]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": blobs[0], "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": d, "size": len(x)} for d, x in zip(blobs[1:], layers)]}).encode()
    resp = requests.put(f"{base}/v2/{repo}/manifests/{tag}", data=manifest, timeout=60,
                        headers={"Content-Type": OCI_MANIFEST})
    if resp.status_code != 201:
        raise SystemExit(f"manifest push refused: {resp.status_code} {resp.text[:300]}")
    return {"manifest": sha256(manifest), "blobs": blobs}


def start_relay(target: str, rate: float) -> Server:
    """tests/support/relay.py as its own process in front of ``target``."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-relay-")
    argv = [sys.executable, "-m", "tests.support.relay", "--target", target, "--port", str(port),
            "--rate", str(rate)]
    server = spawn("relay", argv, os.path.join(workdir, "relay.log"), REPO_ROOT, None,
                   f"http://127.0.0.1:{port}", "", workdir)
    wait_ready(server, 20, f"{server.url}/_relay/counts")
    return server


def relay_gets(relay: Server) -> dict[str, int]:
    """Upstream GETs the relay saw, by path."""
    rows = requests.get(f"{relay.url}/_relay/counts", timeout=30).json()
    return {row["path"]: row["count"] for row in rows if row["method"] == "GET"}


def start_peer_proxy(remote: str) -> Server:
    """docker-registry in proxy mode (``proxy.remoteurl``: one upstream per instance)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-peerproxy-")
    data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir)
    config = os.path.join(workdir, "config.yml")
    with open(config, "w") as fh:
        fh.write(peer_config(data_dir, port) + f"proxy:\n  remoteurl: {remote}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    server = _spawn_registry("peer-proxy", [PEER_BINARY, "serve", config], port, data_dir, workdir, env)
    wait_ready(server, 20)
    return server


def mirror_toml(upstreams: dict[str, str]) -> str:
    """Ours' [proxy] section: host -> upstream URL, one upstream per host, named after the host's first label."""
    lines = ["[proxy]"]
    for host, url in upstreams.items():
        lines += [f"\n[proxy.upstreams.{host.split('.')[0]}]", f'hosts = ["{host}"]', f'urls = ["{url}"]',
                  "manifest_ttl = 60"]
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    upstream: Server
    linked: Server
    counted: Server
    ours: Server
    peer_direct: Server
    peer_counted: Server

    def ours_url(self, host: str, repo: str, kind: str, ref: str) -> str:
        return f"{self.ours.url}/v2/{repo}/{kind}/{ref}?ns={host}"


@contextlib.contextmanager
def stack(link_rate: float, workers: int):
    """Every server of the module docstring, stopped on exit in reverse order."""
    started: list[Server] = []
    try:
        upstream = start_peer()
        started.append(upstream)
        linked = start_relay(upstream.url, link_rate)
        started.append(linked)
        counted = start_relay(upstream.url, 0)
        started.append(counted)
        workdir = tempfile.mkdtemp(prefix="bench-mirror-")
        config = os.path.join(workdir, "registry.toml")
        with open(config, "w") as fh:
            fh.write(mirror_toml({"direct.bench": upstream.url, "linked.bench": linked.url,
                                  "counted.bench": counted.url}))
        ours = start_ours(workers=workers, extra_args=["--config", config])
        started.append(ours)
        peer_direct = start_peer_proxy(upstream.url)
        started.append(peer_direct)
        peer_counted = start_peer_proxy(counted.url)
        started.append(peer_counted)
        yield Stack(upstream, linked, counted, ours, peer_direct, peer_counted)
    finally:
        for server in reversed(started):
            server.stop()
