"""A blob fill on a full disk, for real: the storage root on a small tmpfs this test mounts (root only).

The disk fills mid-body (a short write, then ENOSPC): nothing is stored, the temp file is removed, the
client's stream raises; once space is back the next serve fetches and stores the blob.
"""
from __future__ import annotations

import os
import uuid

import pytest

from registry_ext.config import load_settings
from registry_ext.oci.digest import parse_digest
from registry_ext.proxy.blobfill import BlobFills, FillAborted
from registry_ext.services import build_registry
from tests.support.blobfill_upstream import FaultServer, HttpBlobSource
from tests.support.full_disk import small_disk


@pytest.fixture
def disk(tmp_path):
    with small_disk(tmp_path) as mounted:
        yield mounted


@pytest.fixture
def upstream():
    server = FaultServer().start()
    yield server
    server.stop()


def test_a_full_disk_stores_nothing_and_the_next_fill_succeeds(disk, redis_server, upstream):
    settings = load_settings(data={"storage": {"root": str(disk.mount / "data")},
                                   "redis": {"url": redis_server, "key_prefix": f"fillfull{uuid.uuid4().hex[:8]}"}},
                             environ={})
    registry = build_registry(settings, create_root=True)
    fills = BlobFills.from_registry(registry, lease_ttl_ms=1000)
    data = os.urandom(2 * 1024 * 1024)
    digest = upstream.add(data)
    source = HttpBlobSource(upstream.url, "ok")
    registry.storage.layout.fills.mkdir()
    disk.fill(leave=64)  # 256 KiB left: the 2 MiB body cannot fit
    fill = fills.serve(source, digest, "full/disk")
    with pytest.raises(FillAborted):
        b"".join(fill.chunks)
    fill.close()
    d = parse_digest(digest)
    assert registry.storage.blobs.size(d) is None
    assert not registry.storage.repos.has_blob("full/disk", d)
    assert list(registry.storage.layout.fills.iterdir()) == []
    assert disk.free_pages() >= 64
    disk.free()
    fill = fills.serve(source, digest, "full/disk")
    assert b"".join(fill.chunks) == data
    assert registry.storage.blobs.read(d) == data
    assert registry.storage.repos.has_blob("full/disk", d)
    assert upstream.count(digest) == 2
