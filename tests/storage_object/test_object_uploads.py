"""Upload sessions on an object store (storage/object/uploads.py): appends, the running hash, commit, locking.

Each test runs on the filesystem driver and on S3Driver against Ceph RGW with 5 MiB parts
(tests/support/object_uploads.py); the session locks are StoreLocks leases in the run's real
redis-server, and two stores on one driver, each with its own StoreLocks, are two workers.
"""
from __future__ import annotations

import hashlib
import io
import threading
import time

import orjson
import pytest

from registry_ext.oci import resumable
from registry_ext.oci.digest import Digest
from registry_ext.oci.resumable import ResumableHash
from registry_ext.storage.driver.base import DriverError, PathNotFound, StorageDriver
from registry_ext.storage.driver.filesystem import FilesystemDriver
from registry_ext.storage.driver.s3 import MIN_PART
from registry_ext.storage.object import keys
from registry_ext.storage.upload_session import LengthMismatch, OffsetMismatch, UploadGone
from tests.support.object_uploads import append, blob, chunks, objects, sha256, store_for


class Dropped(io.RawIOBase):
    """A body whose client goes away after ``size`` bytes."""

    def __init__(self, size: int):
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if not self.left:
            raise ConnectionResetError("client went away")
        out = blob(min(n, self.left))
        self.left -= len(out)
        return out


def test_chunks_small_and_large_are_committed_as_one_blob(driver, store):
    parts = [blob(1000, 1), blob(MIN_PART + 4321, 2), blob(3, 3), blob(200_000, 4)]
    info = store.create("team/app", "192.0.2.1")
    assert (info.repo, info.size, store.get(info.id).size) == ("team/app", 0, 0)
    size = 0
    for part in parts:
        with store.session(info.id) as session:
            assert session.size == size
            size = session.append(io.BytesIO(part), size, len(part))
    assert size == sum(map(len, parts)) == store.get(info.id).size
    offsets = [0, 1000, 1000 + MIN_PART + 4321, 1003 + MIN_PART + 4321]
    assert chunks(driver, info.id) == {f"chunk-{o:020d}": len(p) for o, p in zip(offsets, parts)}
    assert "info.json" in objects(driver, info.id)
    data = b"".join(parts)
    with store.session(info.id) as session:
        assert session.digest_back("sha256") == (sha256(data), len(data))
        assert session.digest_back("sha512")[0].hex == hashlib.sha512(data).hexdigest()
        session.commit(sha256(data))
    assert driver.get_content(keys.blob(sha256(data))) == data
    assert objects(driver, info.id) == {} and store.get(info.id) is None


def test_a_chunk_without_a_length_and_an_empty_body(driver, store):
    upload_id = store.create("a").id
    with store.session(upload_id) as session:
        assert session.append(io.BytesIO(b"abc"), None, None) == 3
        assert session.append(io.BytesIO(b""), 3, 0) == 3  # no empty chunk object
    assert chunks(driver, upload_id) == {f"chunk-{0:020d}": 3}


def test_an_empty_upload_commits_the_empty_blob(driver, store):
    upload_id = store.create("a").id
    with store.session(upload_id) as session:
        assert session.digest_back("sha256") == (sha256(b""), 0)
        session.commit(sha256(b""))
    assert driver.get_content(keys.blob(sha256(b""))) == b""


def test_a_chunk_at_the_wrong_offset_changes_nothing(driver, store):
    upload_id = store.create("a").id
    append(store, upload_id, b"12345")
    before = objects(driver, upload_id)
    for start in (0, 4, 6):
        with store.session(upload_id) as session, pytest.raises(OffsetMismatch) as caught:
            session.append(io.BytesIO(b"x"), start, 1)
        assert caught.value.size == 5
    assert objects(driver, upload_id) == before and store.get(upload_id).size == 5


@pytest.mark.parametrize("body,length", [(b"short", 6), (b"too long", 3), (b"", 1)])
def test_a_body_of_the_wrong_length_changes_nothing(driver, store, body, length):
    upload_id = store.create("a").id
    append(store, upload_id, b"kept")
    with store.session(upload_id) as session:
        with pytest.raises(LengthMismatch):
            session.append(io.BytesIO(body), 4, length)
        assert session.size == 4 and chunks(driver, upload_id) == {f"chunk-{0:020d}": 4}
        assert session.append(io.BytesIO(b"!"), 4, 1) == 5  # the session goes on from where it was
    assert chunks(driver, upload_id) == {f"chunk-{0:020d}": 4, f"chunk-{4:020d}": 1}


def test_a_client_dropped_mid_chunk_leaves_no_chunk(driver, store):
    upload_id = store.create("a").id
    append(store, upload_id, b"kept")
    before = objects(driver, upload_id)
    with store.session(upload_id) as session, pytest.raises(ConnectionResetError):
        session.append(Dropped(MIN_PART + 10), 4, 2 * MIN_PART)  # a multipart write on S3: aborted
    assert objects(driver, upload_id) == before and store.get(upload_id).size == 4


@pytest.mark.skipif(not resumable.available(), reason="libcrypto's low-level SHA-256 is not available")
def test_the_running_hash_resumes_in_another_worker(worker):
    one, two = worker(), worker()
    first, rest = blob(70_000, 5), blob(MIN_PART + 1, 6)
    upload_id = one.create("a").id
    with one.session(upload_id) as session:
        hasher = ResumableHash("sha256")
        size = session.append(io.BytesIO(first), 0, len(first), hasher)
        session.save_hash(size, hasher.state())
    with two.session(upload_id) as session:
        assert session.saved_hash(size - 1) is None and session.saved_hash(size + 1) is None
        resumed = ResumableHash.resume(session.saved_hash(session.size))
        session.append(io.BytesIO(rest), size, len(rest), resumed)
        assert resumed.hexdigest() == hashlib.sha256(first + rest).hexdigest()
        assert session.saved_hash(session.size) is None  # the saved state is for the first chunk only


def test_a_broken_saved_hash_is_ignored(driver, store):
    upload_id = store.create("a").id
    append(store, upload_id, b"abc")
    for raw in (b"{torn", b"[]", orjson.dumps({"offset": 3, "state": 7})):
        driver.put_content(keys.upload_hash(upload_id), raw)
        with store.session(upload_id) as session:
            assert session.saved_hash(3) is None


class Blobs:
    """The one thing commit asks of the blob store (touch); records the calls."""

    def __init__(self, driver: StorageDriver):
        self.driver, self.touched = driver, []

    def touch(self, digest: Digest) -> bool:
        self.touched.append(digest)
        try:
            self.driver.stat(keys.blob(digest))
        except PathNotFound:
            return False
        return True


@pytest.mark.parametrize("with_blob_store", [False, True])
def test_a_commit_of_a_stored_blob_only_drops_the_session(driver, worker, with_blob_store):
    blobs = Blobs(driver) if with_blob_store else None
    store, data = worker(blobs), blob(5000, 7)
    driver.put_content(keys.blob(sha256(data)), b"sentinel: proves nothing was written over it")
    upload_id = store.create("a").id
    append(store, upload_id, data)
    with store.session(upload_id) as session:
        session.commit(sha256(data))
    assert driver.get_content(keys.blob(sha256(data))).startswith(b"sentinel")
    assert objects(driver, upload_id) == {}
    assert blobs is None or blobs.touched == [sha256(data)]
    other = blob(10, 8)
    upload_id = store.create("a").id
    append(store, upload_id, other)
    with store.session(upload_id) as session:
        session.commit(sha256(other))  # not stored (touch says False): composed
    assert driver.get_content(keys.blob(sha256(other))) == other


def test_a_patch_after_or_during_a_commit_finds_the_session_gone(driver, worker):
    one, two = worker(), worker()
    data = blob(1234, 9)
    upload_id = one.create("a").id
    append(one, upload_id, data)
    holding, errors = threading.Event(), []

    def late_patch():
        holding.wait(10)
        try:
            append(two, upload_id, b"late", len(data))
        except UploadGone as exc:
            errors.append(exc)

    thread = threading.Thread(target=late_patch)
    thread.start()
    with one.session(upload_id) as session:
        holding.set()
        time.sleep(0.3)  # the late PATCH now waits for the lease
        session.commit(sha256(data))
        with pytest.raises(UploadGone):
            session.append(io.BytesIO(b"x"), None, 1)
    thread.join(10)
    assert len(errors) == 1
    with pytest.raises(UploadGone):
        append(one, upload_id, b"x")
    assert driver.get_content(keys.blob(sha256(data))) == data


def test_a_holder_that_lost_its_lease_writes_nothing(driver, store, upload_redis, lock_prefix):
    upload_id = store.create("a").id
    append(store, upload_id, b"abc")
    before = objects(driver, upload_id)
    with store.session(upload_id) as session:
        upload_redis.delete(f"{lock_prefix}:upload:{{{upload_id}}}:lease")  # expired while the holder stalled
        with pytest.raises(UploadGone):
            session.append(io.BytesIO(b"def"), 3, 3)
        with pytest.raises(UploadGone):
            session.commit(sha256(b"abc"))
    assert objects(driver, upload_id) == before
    with pytest.raises(PathNotFound):
        driver.stat(keys.blob(sha256(b"abc")))


class Slow(io.RawIOBase):
    """A body sent slowly, noting when reading it began and ended."""

    def __init__(self, data: bytes, log: list, name: str):
        self.data, self.log, self.name, self.started = data, log, name, False

    def read(self, n: int = -1) -> bytes:
        if not self.data:
            self.log.append(("end", self.name))
            return b""
        if not self.started:
            self.started = True
            self.log.append(("start", self.name))
        time.sleep(0.05)
        out, self.data = self.data[:1000], self.data[1000:]
        return out


def test_two_workers_appending_to_one_session_take_turns(driver, worker):
    one, two = worker(), worker()
    upload_id = one.create("a").id
    log: list = []
    bodies = {"one": blob(5000, 1), "two": blob(5000, 2)}

    def patch(store, name):
        with store.session(upload_id) as session:
            session.append(Slow(bodies[name], log, name), None, None)

    threads = [threading.Thread(target=patch, args=(s, n)) for s, n in ((one, "one"), (two, "two"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = log[0][1], log[2][1]
    assert log == [("start", first), ("end", first), ("start", second), ("end", second)]
    with one.session(upload_id) as session:
        assert session.digest_back("sha256") == (sha256(bodies[first] + bodies[second]), 10_000)


def test_a_failed_commit_or_create_leaves_the_session_as_it_was(tmp_path, upload_redis, lock_prefix):
    """Provoked on the filesystem driver: a file where the blob's folder must go, or ``uploads/`` itself."""
    driver = FilesystemDriver(tmp_path / "root")
    store = store_for(driver, upload_redis, lock_prefix)
    upload_id, data = store.create("a").id, b"abc"
    append(store, upload_id, data)
    folder = keys.blob(sha256(data)).rsplit("/", 1)[0]
    driver.put_content(folder, b"in the way")
    before = objects(driver, upload_id)
    with store.session(upload_id) as session, pytest.raises(DriverError):
        session.commit(sha256(data))
    assert objects(driver, upload_id) == before
    driver.delete(folder)
    with store.session(upload_id) as session:
        session.commit(sha256(data))  # the client's retry
    assert driver.get_content(keys.blob(sha256(data))) == data
    driver.delete(keys.UPLOADS)
    driver.put_content(keys.UPLOADS, b"in the way")
    with pytest.raises(DriverError):
        store.create("a")
    assert store.counts("a", "b").total == 0
