"""gc's primitives on object storage (docs/gc.md#on-s3): ``take`` and ``take_blob_link`` under a lease per
blob (index/blob_guard.py on the real redis-server), against writers that ``touch``, ``put_*`` and
``link_blob`` through the same lease, on the filesystem driver and a real S3 server.

Two stores with guards of their own stand for two hosts; a racing call is fired from another
thread at the ``gc.before-delete`` failpoint (gc holds the lease there), so each interleaving
happens exactly.
"""
from __future__ import annotations

import threading
import time

import pytest

from registry_ext.index.blob_guard import WEEK_S, BlobGuard, touch_ttl
from registry_ext.oci.digest import Digest, digest_bytes
from registry_ext.storage.object import keys
from registry_ext.storage.object.blobs import ObjectBlobStore
from registry_ext.storage.object.repos import ObjectRepoStore
from tests.storage_object.conftest import blob_guard, store_locks
from tests.support.object_gc import Racer, cutoff_now

D = [Digest("sha256", c * 64) for c in "abc"]


@pytest.fixture
def blobs(driver, guard) -> ObjectBlobStore:
    return ObjectBlobStore(driver, guard)


@pytest.fixture
def repos(driver, locks, guard) -> ObjectRepoStore:
    return ObjectRepoStore(driver, locks, guard)


@pytest.fixture
def other(driver, redis_server, lock_prefix) -> tuple[ObjectBlobStore, ObjectRepoStore]:
    """The stores of another host: the same bucket and Redis, leases of its own."""
    guard = blob_guard(redis_server, lock_prefix)
    return ObjectBlobStore(driver, guard), ObjectRepoStore(driver, store_locks(redis_server, lock_prefix), guard)


def stored(blobs: ObjectBlobStore, *chunks: bytes) -> list[Digest]:
    digests = []
    for data in chunks:
        blobs.put_bytes(digest_bytes(data), data)
        digests.append(digest_bytes(data))
    return digests


# -- blobs ---------------------------------------------------------------------------------------------
def test_take_deletes_an_old_untouched_blob_and_keeps_a_newer_or_touched_one(blobs, guard):
    old, touched = stored(blobs, b"old", b"touched")
    cutoff = cutoff_now()
    assert blobs.touch(touched) and guard.touched_at(str(touched)) > cutoff * 1000
    (new,) = stored(blobs, b"new")
    assert blobs.take(old, cutoff) == 3
    assert blobs.take(touched, cutoff) is None and blobs.take(new, cutoff) is None
    assert blobs.take(old, cutoff) is None  # not there any more
    assert (blobs.size(old), blobs.read(touched), blobs.read(new)) == (None, b"touched", b"new")
    assert (blobs.taken_pending(), blobs.recover_taken()) == (False, 0)  # a take is one DELETE


def test_a_writer_finding_the_blob_stored_touches_it_instead_of_writing(blobs, guard, tmp_path):
    data = b"the same bytes"
    digest = digest_bytes(data)
    assert blobs.touch(digest) is False and guard.touched_at(str(digest)) is None  # nothing to rely on
    blobs.driver.put_content(keys.blob(digest), b"sentinel: proves nothing was written over it")
    local = tmp_path / "fill"
    local.write_bytes(data)
    for write in (lambda: blobs.put_bytes(digest, data), lambda: blobs.put_file(digest, local),
                  lambda: blobs.adopt(digest, local)):
        before = int(time.time() * 1000)
        write()
        assert guard.touched_at(str(digest)) >= before
    assert blobs.read(digest).startswith(b"sentinel") and not local.exists()
    (absent,) = [digest_bytes(b"absent")]
    blobs.put_bytes(absent, b"absent")  # not stored: written, and new needs no touch
    assert blobs.read(absent) == b"absent" and guard.touched_at(str(absent)) is None


def test_a_touch_racing_a_take_waits_for_it_and_finds_the_blob_gone(blobs, other, guard, monkeypatch):
    (digest,) = stored(blobs, b"layer")
    cutoff = cutoff_now()
    racer = Racer(monkeypatch, "gc.before-delete", lambda: other[0].touch(digest))
    assert blobs.take(digest, cutoff) == 5
    assert racer.waited and racer.join() == [False]  # it waited for gc's lease: no blob to promise
    assert guard.touched_at(str(digest)) is None and blobs.size(digest) is None


def test_a_take_racing_a_touch_waits_for_it_and_keeps_the_blob(blobs, other, guard):
    (digest,) = stored(blobs, b"layer")
    cutoff = cutoff_now()
    results: list = []
    with other[0].guard.hold(str(digest)):  # the other host's writer holds the lease, about to touch
        taking = threading.Thread(target=lambda: results.append(blobs.take(digest, cutoff)))
        taking.start()
        taking.join(0.5)
        assert taking.is_alive()  # gc waits for the lease
        other[0].guard.touch(str(digest))
    taking.join(10)
    assert results == [None] and blobs.read(digest) == b"layer"


def test_an_upload_of_the_same_bytes_racing_a_take_writes_them_again(blobs, other, monkeypatch):
    (digest,) = stored(blobs, b"layer")
    cutoff = cutoff_now()
    racer = Racer(monkeypatch, "gc.before-delete", lambda: other[0].put_bytes(digest, b"layer"))
    assert blobs.take(digest, cutoff) == 5
    racer.join()
    assert racer.waited and blobs.read(digest) == b"layer"  # written after the delete
    assert blobs.take(digest, cutoff) is None  # and new


def test_a_take_whose_lease_was_lost_deletes_nothing(blobs, repos, guard, monkeypatch):
    (digest,) = stored(blobs, b"layer")
    repos.link_blob("app", digest)
    cutoff = cutoff_now()
    # the take stalled past its lease's ttl and another holder took the lease over
    Racer(monkeypatch, "gc.before-delete",
          lambda: guard.client.set(guard.keys.blob_lease(str(digest)), "another-holder", px=2000))
    assert repos.take_blob_link("app", digest, cutoff) is False and repos.has_blob("app", digest)
    monkeypatch.undo()
    Racer(monkeypatch, "gc.before-delete",
          lambda: guard.client.set(guard.keys.blob_lease(str(digest)), "another-holder", px=2000))
    assert blobs.take(digest, cutoff) is None and blobs.read(digest) == b"layer"


def test_a_lease_whose_holder_died_delays_a_take_by_at_most_its_ttl(blobs, guard):
    (digest,) = stored(blobs, b"layer")
    cutoff = cutoff_now()
    guard.client.set(guard.keys.blob_lease(str(digest)), "a-dead-host", px=700)
    started = time.monotonic()
    assert blobs.take(digest, cutoff) == 5
    assert 0.5 < time.monotonic() - started < 5


# -- blob links ----------------------------------------------------------------------------------------
def test_take_blob_link_removes_an_old_link_and_keeps_one_written_since(repos):
    repos.link_blob("app", D[0])
    repos.link_blob("app", D[1])
    cutoff = cutoff_now()
    repos.link_blob("app", D[1])  # written again: a client was promised the blob now
    assert repos.take_blob_link("app", D[1], cutoff) is False and repos.has_blob("app", D[1])
    assert repos.take_blob_link("app", D[0], cutoff) is True and not repos.has_blob("app", D[0])
    assert repos.take_blob_link("app", D[0], cutoff) is False  # not there
    assert repos.take_blob_link("app", D[2], cutoff) is False


def test_a_link_written_while_gc_takes_it_waits_and_is_there_afterwards(repos, other, monkeypatch):
    repos.link_blob("app", D[0])
    cutoff = cutoff_now()
    racer = Racer(monkeypatch, "gc.before-delete", lambda: other[1].link_blob("app", D[0]))
    assert repos.take_blob_link("app", D[0], cutoff) is True
    racer.join()
    assert racer.waited and repos.has_blob("app", D[0])  # written after gc's delete, never before it
    assert repos.take_blob_link("app", D[0], cutoff) is False


# -- the guard -----------------------------------------------------------------------------------------
def test_the_guard_keys_live_in_the_digests_slot_and_touches_expire(guard, lock_prefix):
    digest = str(D[0])
    with guard.hold(digest) as lease:
        assert lease.key == f"{lock_prefix}:blob:{{{digest}}}:lease"
        assert guard.client.get(lease.key) == lease.token and guard.still_held(lease)
    assert guard.client.get(lease.key) is None  # released
    guard.touch(digest)
    touched = f"{lock_prefix}:blob:{{{digest}}}:touched"
    assert abs(int(guard.client.get(touched)) - time.time() * 1000) < 5000
    assert WEEK_S - 5 < guard.client.ttl(touched) <= WEEK_S
    assert touch_ttl(0) == touch_ttl(86_400) == WEEK_S and touch_ttl(30 * 86_400) == 60 * 86_400
    longer = BlobGuard(guard.client, lock_prefix, touch_ttl_s=touch_ttl(30 * 86_400))
    longer.touch(digest)
    assert guard.client.ttl(touched) > 59 * 86_400
