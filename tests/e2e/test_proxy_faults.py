"""The mirror under faults (#13): a real ``docker-registry`` upstream behind the relay
(tests/support/relay.py), our mirror (``registry-ext serve``, 2 gunicorn workers) in front.

- the upstream SIGKILLed in the middle of a blob: the client's answer is cut, nothing is stored, and the
  next pull after the upstream is back gets the right bytes;
- the upstream answering 429 with Retry-After: the mirror waits as told and the pull succeeds; a tag
  whose upstream keeps answering 429 is served from the cache, and said to be stale;
- a mirror worker SIGKILLed during a fill: the next pull completes with the right bytes;
- 16 clients pulling one cold blob at once: one upstream GET of it, every client gets the right bytes;
  the same with the clients split over two hosts (two ``serve`` on one data dir and one Redis);
- a client that gives up in the middle of a slow upstream's blob: the fill goes on and is stored.

Every test runs on both storage drivers: the filesystem, and S3 (a new bucket of a real Ceph RGW; the
second host then shares the bucket and Redis, not a folder).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.e2e_proxy import (
    Image,
    Upstream,
    make_image,
    mirror_toml,
    pull_blob,
    push_image,
    start_mirror,
)
from tests.support.e2e_server import RegistryServer
from tests.support.relay import Relay
from tests.support.s3_hosts import s3_config

pytestmark = pytest.mark.e2e

HOST = "registry.test"
NAME = "library/app"
BIG = 20 << 20  # big enough that a cut lands mid-body whatever the socket buffers hold


def config(relay_url: str) -> str:
    return mirror_toml({"hub": {"hosts": [HOST], "urls": [relay_url], "timeout": 10, "max_retries": 2,
                                "retry_delay": 0.2, "manifest_ttl": 0}})


ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


@dataclass
class World:
    upstream: Upstream
    relay: Relay
    mirror: RegistryServer
    image: Image
    bucket: tuple | None = None  # S3: (the server, its bucket); None: the filesystem
    toml: str = ""

    @property
    def big(self) -> str:
        return self.image.layers[-1]

    def blob_url(self, digest: str) -> str:
        return f"{self.mirror.url}/v2/{NAME}/blobs/{digest}?ns={HOST}"

    def manifest_url(self, ref: str) -> str:
        return f"{self.mirror.url}/v2/{NAME}/manifests/{ref}?ns={HOST}"

    def upstream_path(self, kind: str, ref: str) -> str:
        return f"/v2/{NAME}/{kind}/{ref}"

    def committed(self, digest: str) -> bool:
        """The blob is in the mirror's store (storage/layout.py: ``blobs/<alg>/<hex[:2]>/<hex>``, on S3 the
        same key in the bucket)."""
        hexdigest = digest.split(":", 1)[1]
        key = f"blobs/sha256/{hexdigest[:2]}/{hexdigest}"
        if self.bucket is None:
            return (Path(self.mirror.data_dir) / key).exists()
        server, bucket = self.bucket
        return server.client().list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 1

    def wait_committed(self, digest: str, timeout: float = 30.0) -> bool:
        """The fill commits after its last byte went out (fsync, rename): wait for it."""
        deadline = time.monotonic() + timeout
        while not self.committed(digest) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.committed(digest)


@pytest.fixture(params=["filesystem", "s3"])
def world(request, tmp_path, redis_server):
    upstream = Upstream(tmp_path, "hub").start()
    relay = Relay(upstream.url).start()
    mirror, bucket, toml = None, None, config(relay.url)
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = (server, server.new_bucket("faults"))
        toml = s3_config(tmp_path / "s3.toml", server, bucket[1]).read_text() + toml
    try:
        image = make_image("hub", (BIG,))
        push_image(upstream.url, NAME, "1", image)
        mirror = start_mirror(tmp_path / "mirror", redis_server, toml, workers=2)
        yield World(upstream, relay, mirror, image, bucket, toml)
    finally:
        if mirror is not None:
            mirror.close()
        relay.close()
        upstream.stop()


def read_in_background(url: str) -> tuple[threading.Thread, dict]:
    """Stream ``url`` in a thread; the dict gets ``status``, ``bytes`` and ``error`` (an exception)."""
    outcome: dict = {"bytes": 0, "error": None, "status": None}

    def read() -> None:
        try:
            with requests.get(url, stream=True, timeout=60) as resp:
                outcome["status"] = resp.status_code
                for piece in resp.iter_content(1 << 16):
                    outcome["bytes"] += len(piece)
        except requests.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, outcome


def test_upstream_killed_mid_blob(world):
    world.relay.rate = 8 << 20  # 2.5 s for the whole layer: time to cut it
    thread, outcome = read_in_background(world.blob_url(world.big))
    world.relay.wait_forwarded(world.upstream_path("blobs", world.big), 2 << 20)
    world.upstream.kill()
    thread.join(60)
    assert not thread.is_alive()
    assert outcome["status"] == 200 and outcome["bytes"] < BIG, outcome
    assert isinstance(outcome["error"], requests.exceptions.ChunkedEncodingError), outcome
    assert not world.committed(world.big), "a cut blob was stored"
    down = requests.get(world.blob_url(world.big), timeout=60)
    assert down.status_code == 503, (down.status_code, down.headers, down.text[:300])
    assert not world.committed(world.big)

    world.upstream.start()
    world.relay.rate = 0
    assert pull_blob(world.blob_url(world.big)) == (world.big, BIG)
    assert world.wait_committed(world.big), world.mirror.diagnostics()


def test_429_retry_after_is_honoured(world):
    manifest_path = world.upstream_path("manifests", "1")
    world.relay.limit_429(f"^{manifest_path}$", times=1, retry_after=1)
    world.relay.limit_429(f"^{world.upstream_path('blobs', world.image.config)}$", times=1, retry_after=1)
    resp = requests.get(world.manifest_url("1"), headers=ACCEPT, timeout=60)
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    assert resp.content == world.image.manifest
    arrivals = world.relay.times_of(f"^{manifest_path}$")
    assert len(arrivals) >= 2 and arrivals[1] - arrivals[0] >= 1.0, arrivals  # waited as Retry-After said
    config = requests.get(world.blob_url(world.image.config), timeout=60)
    assert config.status_code == 200 and config.content == world.image.blobs[world.image.config]


def test_429_beyond_the_retries_serves_the_cached_tag(world):
    first = requests.get(world.manifest_url("1"), headers=ACCEPT, timeout=60)
    assert first.status_code == 200 and first.content == world.image.manifest
    assert "X-Regext-Mirror" not in first.headers, dict(first.headers)
    manifest_path = world.upstream_path("manifests", "1")
    world.relay.limit_429(f"^{manifest_path}$", times=100, retry_after=1)
    stale = requests.get(world.manifest_url("1"), headers=ACCEPT, timeout=60)
    assert stale.status_code == 200, (stale.status_code, stale.text[:300])
    assert stale.content == world.image.manifest
    assert stale.headers["Docker-Content-Digest"] == world.image.digest
    assert stale.headers["X-Regext-Mirror"] == "stale", dict(stale.headers)


def test_worker_killed_during_a_fill(world):
    world.relay.rate = 8 << 20
    thread, outcome = read_in_background(world.blob_url(world.big))
    world.relay.wait_forwarded(world.upstream_path("blobs", world.big), 2 << 20)
    workers = world.mirror.worker_pids()
    assert len(workers) >= 2, workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive()
    assert outcome["status"] == 200 and outcome["bytes"] < BIG, outcome
    assert isinstance(outcome["error"], requests.exceptions.ChunkedEncodingError), outcome
    assert not world.committed(world.big)
    world.relay.rate = 0
    assert pull_blob(world.blob_url(world.big)) == (world.big, BIG)
    assert world.wait_committed(world.big), world.mirror.diagnostics()


def test_sixteen_clients_one_upstream_fetch(world):
    world.relay.rate = 32 << 20  # ~0.6 s fill: the clients arrive while it runs
    barrier = threading.Barrier(16)

    def pull(_: int) -> tuple[str, int]:
        barrier.wait(30)
        return pull_blob(world.blob_url(world.big))

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(pull, range(16)))
    assert results == [(world.big, BIG)] * 16
    assert world.relay.count("GET", world.upstream_path("blobs", world.big)) == 1, world.relay.counts


def test_two_hosts_one_upstream_fetch(world, tmp_path, redis_server):
    """A second host of the same registry (same data dir, or on S3 the same bucket, and the same Redis)
    fills the same blob: 8 clients on each host, one upstream GET."""
    world.relay.rate = 32 << 20
    second = start_mirror(tmp_path / "second", redis_server, world.toml, share_with=world.mirror,
                          share_data_dir=world.bucket is None)
    try:
        urls = [world.blob_url(world.big), world.blob_url(world.big).replace(world.mirror.url, second.url)]
        barrier = threading.Barrier(16)

        def pull(i: int) -> tuple[str, int]:
            barrier.wait(30)
            return pull_blob(urls[i % 2])

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(pull, range(16)))
    finally:
        second.close()
    assert results == [(world.big, BIG)] * 16
    assert world.relay.count("GET", world.upstream_path("blobs", world.big)) == 1, world.relay.counts


def test_client_giving_up_leaves_the_fill_running(world):
    """A client slower to wait than the upstream is to send reads 1 MiB and leaves: the fill goes on,
    the blob is stored from that one upstream GET, and the next pull is served from it."""
    world.relay.rate = 8 << 20
    with requests.get(world.blob_url(world.big), stream=True, timeout=60) as resp:
        assert resp.status_code == 200
        assert len(next(resp.iter_content(1 << 20))) > 0
    world.relay.wait_forwarded(world.upstream_path("blobs", world.big), BIG, timeout=30)
    assert world.wait_committed(world.big), world.mirror.diagnostics()
    world.relay.rate = 0
    assert pull_blob(world.blob_url(world.big)) == (world.big, BIG)
    assert world.relay.count("GET", world.upstream_path("blobs", world.big)) == 1, world.relay.counts
