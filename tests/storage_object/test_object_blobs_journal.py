"""storage/object/blobs.py and journal.py: BlobStore and Journal through a driver, on the filesystem
driver and a real S3 server; the reconciler on the object journal; failures surface, never swallowed."""
from __future__ import annotations

import hashlib
import os
import time
import types

import pytest
import requests

from registry_ext.oci.digest import Digest, digest_bytes
from registry_ext.services import reconcile
from registry_ext.services.reconcile import Reconciler
from registry_ext.storage.blobs import BlobStore, StoredBlob
from registry_ext.storage.driver.base import StorageFull, Unavailable
from registry_ext.storage.driver.filesystem import FilesystemDriver
from registry_ext.storage.driver.s3 import S3Driver, S3Options
from registry_ext.storage.history import HistoryEvent
from registry_ext.storage.journal import Intent
from registry_ext.storage.object import NotSupportedOnObjectStorage, keys
from registry_ext.storage.object.blobs import ObjectBlobStore
from registry_ext.storage.object.journal import ObjectJournal
from registry_ext.storage.object.repos import ObjectRepoStore
from registry_ext.storage.repos import TagRecord
from tests.storage_object.conftest import fs_tree, tree
from tests.support.full_disk import PAGE, small_disk
from tests.support.servers import free_port

MiB = 1024 * 1024


@pytest.fixture
def blobs(driver) -> ObjectBlobStore:
    return ObjectBlobStore(driver)


def payload(size: int, seed: int = 0) -> bytes:
    return (bytes(range(251)) * (size // 251 + 2))[seed:seed + size]


def local_file(tmp_path, data: bytes, name: str = "fill"):
    path = tmp_path / name
    path.write_bytes(data)
    return path, Digest("sha256", hashlib.sha256(data).hexdigest())


# -- blobs ---------------------------------------------------------------------------------------------
def test_put_bytes_open_read_size_touch_in_the_filesystem_format(blobs, layout):
    data = b'{"schemaVersion":2}'
    digest = digest_bytes(data)
    for store in (blobs, BlobStore(layout)):
        assert store.size(digest) is None and store.open(digest) is None and store.read(digest) is None
        assert store.touch(digest) is False
        store.put_bytes(digest, data)
        store.put_bytes(digest, data)  # content-addressed: again is a no-op
    assert tree(blobs.driver, keys.BLOBS) == fs_tree(layout, "blobs")
    assert blobs.size(digest) == len(data) and blobs.read(digest) == data and blobs.touch(digest)
    with blobs.open(digest) as stream:
        assert stream.read(5) == data[:5] and stream.read() == data[5:]


def test_put_file_streams_a_local_file_once(blobs, tmp_path):
    data = payload(6 * MiB + 123)  # above S3's 5 MiB part: a multipart upload of 1 MiB writes
    path, digest = local_file(tmp_path, data)
    blobs.put_file(digest, path)
    assert blobs.size(digest) == len(data)
    with blobs.open(digest) as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == digest.hex
    path.write_bytes(b"other bytes")  # content-addressed: a stored blob is never uploaded again
    blobs.put_file(digest, path)
    assert blobs.size(digest) == len(data)


def test_put_file_of_a_missing_local_file_stores_nothing(blobs, tmp_path):
    digest = Digest("sha256", "e" * 64)
    with pytest.raises(FileNotFoundError):
        blobs.put_file(digest, tmp_path / "gone")
    assert blobs.size(digest) is None and list(blobs.stored()) == []


def test_stored_lists_blobs_with_size_and_time_and_skips_strays(blobs, layout, tmp_path):
    small, big = b"a", payload(3000, 7)
    for store in (blobs, BlobStore(layout)):
        store.put_bytes(digest_bytes(small), small)
        store.put_bytes(digest_bytes(big, "sha512"), big)
    blobs.driver.put_content("blobs/sha256/ab/not-a-digest", b"x")
    blobs.driver.put_content("blobs/md5/ab/" + "a" * 64, b"x")
    found = sorted(blobs.stored(), key=lambda b: b.digest)
    assert [(b.digest, b.size) for b in found] == sorted((b.digest, b.size) for b in BlobStore(layout).stored())
    assert {b.digest for b in found} == {digest_bytes(small), digest_bytes(big, "sha512")}
    assert all(isinstance(b, StoredBlob) and abs(b.mtime - time.time()) < 120 for b in found)


def test_redirect_url_is_the_drivers(blobs, tmp_path):
    data = b"redirected"
    digest = digest_bytes(data)
    blobs.put_bytes(digest, data)
    url = blobs.redirect_url(digest)
    if isinstance(blobs.driver, FilesystemDriver):
        assert url is None  # the bytes go through the registry
    else:
        assert requests.get(url, timeout=10).content == data


def test_without_a_guard_gc_is_refused_with_a_clear_error(blobs):
    data = b"kept"
    blobs.put_bytes(digest_bytes(data), data)
    with pytest.raises(NotSupportedOnObjectStorage, match="not supported on object storage"):
        blobs.take(digest_bytes(data), time.time())
    assert (blobs.taken_pending(), blobs.recover_taken()) == (False, 0)  # nothing is ever taken here
    assert blobs.read(digest_bytes(data)) == data


def test_open_range_and_adopt(blobs, tmp_path):
    data = bytes(range(256)) * 40
    local = tmp_path / "fill"
    local.write_bytes(data)
    blobs.adopt(digest_bytes(data), local)
    assert not local.exists() and blobs.read(digest_bytes(data)) == data
    with blobs.open_range(digest_bytes(data), 1000, 500) as part:
        assert part.read() == data[1000:1500]
    assert blobs.open_range(digest_bytes(b"absent"), 0, 5) is None


# -- journal -------------------------------------------------------------------------------------------
def test_journal_open_close_entries(driver):
    journal = ObjectJournal(driver)
    assert list(journal.entries()) == []
    first = journal.open(Intent("team/app", ("v1",), ("sha256:" + "a" * 64,), catalog=True))
    second = journal.open(Intent("other"))
    assert isinstance(first, str) and first.startswith("journal/") and first.endswith(".json")
    assert sorted(journal.entries()) == sorted([
        (first, Intent("team/app", ("v1",), ("sha256:" + "a" * 64,), True)), (second, Intent("other"))])
    assert [key for key, _i in journal.entries()] == sorted([first, second])  # oldest name first
    assert journal.exists(first) and 0 <= journal.age_ms(first) < 120_000
    journal.close(first)
    journal.close(first)  # already gone: fine
    assert not journal.exists(first) and journal.age_ms(first) is None
    assert [key for key, _i in journal.entries()] == [second]


def test_journal_pending_keeps_the_entry_when_the_block_raises(driver):
    journal = ObjectJournal(driver)
    with journal.pending(Intent("a", ("t",))):
        (key, intent), = journal.entries()
        assert intent == Intent("a", ("t",))
    assert list(journal.entries()) == []
    with pytest.raises(RuntimeError):
        with journal.pending(Intent("b")):
            raise RuntimeError("the write failed")
    assert [intent for _k, intent in journal.entries()] == [Intent("b")]


def test_an_unreadable_entry_is_none_and_the_reconciler_drops_it_once_old(driver, monkeypatch):
    journal = ObjectJournal(driver)
    driver.put_content(keys.journal_entry("0" * 32), b'{"repo": "torn')
    driver.put_content(keys.journal_entry("1" * 32), b'{"repo": "x"}')  # a key missing
    assert list(journal.entries()) == [(keys.journal_entry("0" * 32), None), (keys.journal_entry("1" * 32), None)]
    storage = types.SimpleNamespace(journal=journal)
    assert Reconciler(storage, index=None).sweep() == 0
    assert len(list(journal.entries())) == 2  # young: maybe still being written
    monkeypatch.setattr(reconcile, "TORN_ENTRY_AGE_SECONDS", -1)
    assert Reconciler(storage, index=None).sweep() == 0
    assert list(journal.entries()) == []


def test_the_reconciler_leaves_an_entry_whose_repository_is_locked(driver, locks):
    """It replays under ``try_lock``: held means the write still runs (no index needed to see it)."""
    journal, repos = ObjectJournal(driver), ObjectRepoStore(driver, locks)
    key = journal.open(Intent("app", ("v1",)))
    storage = types.SimpleNamespace(journal=journal, repos=repos)
    with repos.lock("app"):
        assert Reconciler(storage, index=None).sweep() == 0
    assert journal.exists(key)


# -- failures ------------------------------------------------------------------------------------------
def test_a_store_that_cannot_be_reached_raises_and_is_never_read_as_empty(tmp_path):
    """Only a missing object means absent: an unreachable S3 is an error from every store."""
    dead = S3Driver(S3Options(bucket="b", endpoint_url=f"http://127.0.0.1:{free_port()}", path_style=True,
                              access_key="k", secret_key="s", max_attempts=1, connect_timeout=0.5),
                    spool_dir=str(tmp_path))
    repos, blobs, journal = ObjectRepoStore(dead, locks=None), ObjectBlobStore(dead), ObjectJournal(dead)
    digest = Digest("sha256", "a" * 64)
    calls = [lambda: repos.tag("a", "v1"), lambda: repos.exists("a"), lambda: list(repos.names()),
             lambda: repos.has_blob("a", digest), lambda: repos.last_history("a", "v1"),
             lambda: repos.tags_pointing_at("a", str(digest)), lambda: blobs.size(digest),
             lambda: blobs.open(digest), lambda: list(journal.entries()), lambda: journal.open(Intent("a"))]
    for call in calls:
        with pytest.raises(Unavailable):
            call()


def test_a_full_disk_leaves_nothing_half_written(tmp_path, locks):
    """The filesystem driver on a full tmpfs: each write raises StorageFull and leaves the old state."""
    with small_disk(tmp_path) as disk:
        driver = FilesystemDriver(disk.mount / "root")
        repos, blobs, journal = ObjectRepoStore(driver, locks), ObjectBlobStore(driver), ObjectJournal(driver)
        event = HistoryEvent("v1", "sha256:" + "a" * 64, 1, "created", "m", 1)
        repos.record_history("app", event)
        repos.put_tag("app", TagRecord("v1", event.digest, 1, 1))
        before = tree(driver, "")
        path, digest = local_file(tmp_path, payload(2 * MiB))
        disk.fill(leave=64 * 1024 // PAGE)  # 64 KiB: more than a record, less than the blob
        with pytest.raises(StorageFull):
            blobs.put_file(digest, path)
        disk.fill(leave=0)
        for call in (lambda: repos.record_history("app", event), lambda: journal.open(Intent("app")),
                     lambda: repos.put_tag("app", TagRecord("v1", "sha256:" + "b" * 64, 2, 2)),
                     lambda: blobs.put_bytes(digest_bytes(b"x"), b"x")):
            with pytest.raises(StorageFull):
                call()
        assert tree(driver, "") == before
        assert os.listdir(driver.tmp) == []
        disk.free()
        assert repos.record_history("app", event) == event and len(repos.history("app", "v1")) == 2
