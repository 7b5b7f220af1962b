"""The pull-through blob fill (proxy/blobfill.py) against real upstreams and a real Redis.

Upstreams: Debian's docker-registry with blobs pushed into it, and a registry-shaped HTTP server we
control (tests/support/blobfill_upstream.py) that counts GETs and misbehaves on demand. Workers are
separate ``BlobFills`` over separate Redis connections, threads, or a forked process.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bench.peer import start_peer
from registry_ext.index.fills import FillIndex
from registry_ext.oci.digest import parse_digest
from registry_ext.proxy import fill_writer
from registry_ext.proxy.blobfill import BlobFills, Fill, FillAborted
from registry_ext.proxy.source import UpstreamNotFound
from registry_ext.services import build_registry
from registry_ext.services.maintenance import Maintenance
from tests.support.blobfill_upstream import FaultServer, HttpBlobSource, sha256
from tests.support.e2e_mirror_seed import Pusher

TTL_MS = 1000


@pytest.fixture(scope="module")
def upstream():
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    server = start_peer(data_dir=str(tmp_path_factory.mktemp("fill-peer")))
    yield server
    server.stop()


@pytest.fixture
def registry(settings):
    return build_registry(settings, create_root=True)


def fills_for(settings, **kwargs) -> BlobFills:
    """A worker of its own: its own registry objects and Redis connections."""
    kwargs.setdefault("lease_ttl_ms", TTL_MS)
    return BlobFills.from_registry(build_registry(settings, create_root=True), **kwargs)


def body(fill: Fill) -> bytes:
    try:
        return b"".join(fill.chunks)
    finally:
        fill.close()


def assert_nothing_stored(registry, digest: str, repository: str) -> None:
    d = parse_digest(digest)
    assert registry.storage.blobs.size(d) is None
    assert not registry.storage.repos.has_blob(repository, d)
    assert list(registry.storage.layout.fills.iterdir()) == []


def assert_stored(registry, digest: str, repository: str, data: bytes) -> None:
    d = parse_digest(digest)
    assert registry.storage.blobs.read(d) == data
    assert registry.storage.repos.has_blob(repository, d)
    assert registry.index.client.zscore(registry.index.keys.repos, repository) == 0  # in the catalog


def test_cold_fill_from_docker_registry_is_stored_linked_and_exact(settings, registry, peer):
    data = os.urandom(300_000)
    Pusher(peer.url).blob("lib/app", data)
    digest = sha256(data)
    fill = fills_for(settings).serve(HttpBlobSource(peer.url, "lib/app"), digest, "peer/lib/app")
    assert fill.size == len(data)
    assert body(fill) == data
    assert_stored(registry, digest, "peer/lib/app", data)
    assert list(registry.storage.layout.fills.iterdir()) == []


def test_warm_serve_comes_from_storage_and_links_the_repository(settings, registry, upstream):
    data = os.urandom(100_000)
    digest = upstream.add(data)
    fills = fills_for(settings)
    assert body(fills.serve(HttpBlobSource(upstream.url, "ok"), digest, "a/one")) == data
    fill = fills.serve(HttpBlobSource(upstream.url, "ok"), digest, "b/two")
    assert fill.size == len(data)
    assert body(fill) == data
    assert upstream.count(digest) == 1
    assert_stored(registry, digest, "b/two", data)


def test_sixteen_concurrent_serves_fetch_once(settings, registry, upstream):
    data = os.urandom(256 * 1024)
    digest = upstream.add(data)
    workers = [fills_for(settings) for _ in range(4)]
    results: list[bytes | BaseException] = [b""] * 16

    def pull(i: int) -> None:
        try:
            results[i] = body(workers[i % 4].serve(HttpBlobSource(upstream.url, "slow"), digest, f"r/{i % 2}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=pull, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [data] * 16
    assert upstream.count(digest) == 1
    assert_stored(registry, digest, "r/0", data)
    assert_stored(registry, digest, "r/1", data)


def test_a_client_going_away_leaves_the_fill_running(settings, registry, upstream):
    data = os.urandom(256 * 1024)
    digest = upstream.add(data)
    fills = fills_for(settings)
    first = fills.serve(HttpBlobSource(upstream.url, "slow"), digest, "gone/early")
    assert len(next(first.chunks)) > 0
    first.close()
    assert body(fills_for(settings).serve(HttpBlobSource(upstream.url, "slow"), digest, "stays")) == data
    assert upstream.count(digest) == 1
    assert_stored(registry, digest, "gone/early", data)


def test_a_killed_leader_is_taken_over(settings, registry, upstream):
    data = os.urandom(512 * 1024)
    digest = upstream.add(data)
    pid = os.fork()
    if pid == 0:  # the leader: holds the lease and fills until killed
        try:
            fills_for(settings).serve(HttpBlobSource(upstream.url, "slow"), digest, "killed")
            time.sleep(60)
        finally:
            os._exit(0)
    index = FillIndex(registry.index.client, registry.index.keys)
    while index.look(digest) is None or index.look(digest).written < 64 * 1024:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert index.look(digest).status == "filling"
    fill = fills_for(settings).serve(HttpBlobSource(upstream.url, "slow"), digest, "survivor")
    assert body(fill) == data
    assert upstream.count(digest) == 2
    assert_stored(registry, digest, "survivor", data)
    left = list(registry.storage.layout.fills.iterdir())
    assert len(left) == 1  # the dead leader's temp file, until the sweep
    assert fill_writer.sweep(registry.storage.layout, index, grace_s=0) == 1
    assert list(registry.storage.layout.fills.iterdir()) == []


@pytest.mark.parametrize("mode", ["die", "lie", "wrong", "endless"])
def test_a_faulty_upstream_stores_nothing_and_cuts_the_stream(settings, registry, upstream, mode):
    data = os.urandom(200_000)
    digest = upstream.add(data)
    fills = fills_for(settings, max_bytes=1024 * 1024)
    fill = fills.serve(HttpBlobSource(upstream.url, mode), digest, f"fault/{mode}")
    with pytest.raises(FillAborted):
        body(fill)
    assert_nothing_stored(registry, digest, f"fault/{mode}")
    assert body(fills.serve(HttpBlobSource(upstream.url, "ok"), digest, f"fault/{mode}")) == data
    assert_stored(registry, digest, f"fault/{mode}", data)


def test_an_upstream_error_before_the_first_byte_is_raised(settings, registry, upstream):
    digest = upstream.add(os.urandom(1000))
    with pytest.raises(UpstreamNotFound):
        fills_for(settings).serve(HttpBlobSource(upstream.url, "gone"), digest, "missing")
    assert_nothing_stored(registry, digest, "missing")


def test_stale_temp_files_are_swept_and_live_ones_kept(registry):
    layout = registry.storage.layout
    index = FillIndex(registry.index.client, registry.index.keys, TTL_MS * 30)
    layout.fills.mkdir(parents=True, exist_ok=True)
    dead = layout.fill_temp(parse_digest("sha256:" + "1" * 64), "a" * 32)
    live = layout.fill_temp(parse_digest("sha256:" + "2" * 64), "b" * 32)
    young = layout.fill_temp(parse_digest("sha256:" + "3" * 64), "c" * 32)
    for path in (dead, live, young):
        path.write_bytes(b"partial")
    for path in (dead, live):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert index.take("sha256:" + "2" * 64, "b" * 32)
    assert fill_writer.sweep(layout, index) == 1
    assert sorted(layout.fills.iterdir()) == sorted([live, young])
    index.end("sha256:" + "2" * 64, "b" * 32, {"status": "failed"})


def test_housekeeping_sweeps_a_dead_fills_temp_file(settings, registry):
    layout = registry.storage.layout
    layout.fills.mkdir(parents=True, exist_ok=True)
    dead = layout.fill_temp(parse_digest("sha256:" + "4" * 64), "d" * 32)
    dead.write_bytes(b"partial")
    os.utime(dead, (time.time() - 3600, time.time() - 3600))
    Maintenance(registry, 1000).housekeeping.tick()
    assert list(layout.fills.iterdir()) == []


def test_the_empty_blob_is_filled(settings, registry, upstream):
    digest = upstream.add(b"")
    fill = fills_for(settings).serve(HttpBlobSource(upstream.url, "ok"), digest, "empty/one")
    assert fill.size == 0
    assert body(fill) == b""
    assert_stored(registry, digest, "empty/one", b"")


def test_a_follower_of_a_failed_open_gets_the_same_error(settings, registry, upstream):
    digest = upstream.add(os.urandom(1000))
    errors: list[BaseException] = []

    def lead() -> None:
        try:
            fills_for(settings).serve(HttpBlobSource(upstream.url, "late"), digest, "late/one")
        except UpstreamNotFound as exc:
            errors.append(exc)

    leader = threading.Thread(target=lead)
    leader.start()
    index = FillIndex(registry.index.client, registry.index.keys)
    while index.look(digest) is None:
        time.sleep(0.005)
    assert index.look(digest).status == "opening"
    with pytest.raises(UpstreamNotFound):
        fills_for(settings).serve(HttpBlobSource(upstream.url, "late"), digest, "late/two")
    leader.join(30)
    assert len(errors) == 1
    assert upstream.count(digest) == 1
    assert_nothing_stored(registry, digest, "late/two")
