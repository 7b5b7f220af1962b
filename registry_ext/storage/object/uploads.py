"""Upload sessions on an object store (S3), with the filesystem store's methods and semantics (storage/uploads.py).

S3 has no append, no flock and no rename, so a session is a folder of
objects under ``uploads/<id>/``: ``info.json`` ({"repo", "started_at"}, as
on the filesystem), one object per accepted chunk, ``chunk-<offset>``
(zero-padded, so key order is offset order), and ``hash.json`` ({"offset",
"state"}), the running hash after the last chunk. A chunk is written with
``driver.writer`` (spooled through local disk, never held in memory) and
committed only once the whole body arrived with the announced length; any
failure cancels it, so the session only ever grows by whole chunks.

The size is the sum of the chunk objects, read from one listing of the
session folder (which gives every size), not from a state object: a state
object would be a second write per chunk that a crash between the two can
leave disagreeing with the chunks, while the listing cannot disagree with
itself. Listings are strongly consistent on S3 (since 2020) and on RGW.
Chunks must tile ``[0, size)`` exactly; a folder whose chunks do not (a
gap or an overlap) is broken: never appended to, never committed.

The session lock is a lease on ``upload:<id>`` (``locks.hold``, across
hosts) for the span of a ``session`` block. Whoever ends a session (commit,
cancel, expiry) deletes ``info.json`` first, under the lease: a request that
was waiting for the lease then finds the session gone (UploadGone), and a
crash half-way through the deletion leaves a folder without ``info.json``,
which is broken and swept. A chunk is committed, and a session composed,
only after checking that the lease is still held (a holder stalled past the
lease's expiry gives up instead of writing over its successor).

Committing composes the chunks into the blob key (``driver.compose``:
server-side part copies for chunks of 5 MiB or more) unless the blob is
stored already (content-addressed: the same bytes; the blob store's
``touch`` then marks it relied on, under gc's lease: docs/gc.md#on-s3),
then deletes the session. The service verifies the digest before it commits (the running
hash, or ``digest_back``), so a blob key never holds unverified bytes.
Expiry, sweeping, ``stale`` and ``purge`` judge sessions as the filesystem
store does; a session is in use while its lease is held (``try_hold``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import secrets
from typing import BinaryIO, Iterator, Protocol

import orjson

from registry_ext.clock import now_ms
from registry_ext.oci.digest import Digest
from registry_ext.oci.reference import is_valid_upload_id
from registry_ext.storage.driver.base import (DriverError, FileInfo, InvalidPath, PathNotFound, StorageDriver,
                                              check_path)
from registry_ext.storage.locks import Held, Locks
from registry_ext.storage.object import keys
from registry_ext.storage.upload_session import (BUSY_GRACE_MS, CHUNK, Hasher, OffsetMismatch, SessionCounts,
                                                 UploadGone, UploadInfo, check_length, copy_body, owner_tag)

_CHUNK = re.compile(r"chunk-(\d+)")
INFO, HASH = "info.json", "hash.json"


class Touching(Protocol):
    """What commit asks of the blob store, when it has one: re-date a stored blob (gc keeps it)."""

    def touch(self, digest: Digest) -> bool: ...


@dataclasses.dataclass(frozen=True)
class _Scan:
    """One listing of a session folder."""

    objects: list[FileInfo]
    has_info: bool
    chunks: list[FileInfo] | None  # in offset order; None: they do not tile [0, size)

    @property
    def size(self) -> int:
        return sum(chunk.size for chunk in self.chunks or ())

    @property
    def newest_ms(self) -> int:
        return max((o.modified_ms for o in self.objects), default=0)


class ObjectUploadStore:
    def __init__(self, driver: StorageDriver, locks: Locks, blobs: Touching | None, ttl_seconds: int,
                 idle_seconds: int | None = None):
        """``blobs``: the blob store, whose ``touch`` re-dates a blob a commit finds stored (as the
        filesystem's ``adopt`` does); None: a stat of the blob key decides."""
        self.driver = driver
        self.locks = locks
        self.blobs = blobs
        self.ttl_ms = ttl_seconds * 1000
        self.idle_ms = (ttl_seconds if idle_seconds is None else idle_seconds) * 1000

    # -- store-level methods (those of storage/uploads.UploadStore) --------------
    def create(self, repo: str, client: str = "") -> UploadInfo:
        """Open a new, empty session for ``repo``, opened by ``client`` (its address)."""
        upload_id = owner_tag(repo) + owner_tag(client) + secrets.token_hex(10)
        now = now_ms()
        try:
            self.driver.put_content(keys.upload_info(upload_id), orjson.dumps({"repo": repo, "started_at": now}))
        except BaseException:
            with contextlib.suppress(DriverError):
                self.delete(upload_id)  # an answer lost after the write: no session stays behind
            raise
        return UploadInfo(upload_id, repo, now, 0)

    def get(self, upload_id: str) -> UploadInfo | None:
        """The session, or None when unknown, malformed, broken or expired."""
        if not is_valid_upload_id(upload_id):
            return None
        info = self._read_info(upload_id)
        scan = self._scan(upload_id)
        if info is None or not scan.has_info or scan.chunks is None:
            return None
        if self._expired(info["started_at"], scan.size) and self._remove_unused(upload_id):
            return None
        return UploadInfo(upload_id, info["repo"], info["started_at"], scan.size)

    def counts(self, repo: str, client: str) -> SessionCounts:
        """Open sessions in the store, of ``repo`` and of ``client``, from one listing of ``uploads/``."""
        repo_tag, client_tag = owner_tag(repo), owner_tag(client)
        total = of_repo = of_client = 0
        for name in self._ids():
            total += 1
            of_repo += name.startswith(repo_tag)
            of_client += name[6:12] == client_tag
        return SessionCounts(total, of_repo, of_client)

    def sweep(self) -> int:
        """Remove every expired or broken session that no request is using; the count."""
        return sum(1 for upload_id in self._ids()
                   if self._state(upload_id) in ("expired", "broken") and self._remove_unused(upload_id))

    def stale(self) -> list[str]:
        """Ids of sessions that are expired or broken and not in use (nothing is changed)."""
        return [upload_id for upload_id in self._ids()
                if self._state(upload_id) in ("expired", "broken") and not self._in_use(upload_id)]

    def purge(self, older_than_seconds: int) -> int:
        """Remove sessions started more than ``older_than_seconds`` ago; return the count."""
        cutoff = now_ms() - older_than_seconds * 1000
        removed = 0
        for upload_id in self._ids():
            info = self._read_info(upload_id)
            if info is not None:
                started = info["started_at"]
            else:
                scan = self._scan(upload_id)
                if not scan.objects:
                    continue
                started = scan.newest_ms
            if started < cutoff:
                self.delete(upload_id)
                removed += 1
        return removed

    def delete(self, upload_id: str) -> None:
        """End the session: ``info.json`` first (from then on it is gone), then everything else."""
        try:
            check_path(self.driver.name, keys.upload_dir(upload_id))
        except InvalidPath:
            return
        self.driver.delete(keys.upload_info(upload_id))
        self.driver.delete(keys.upload_dir(upload_id))

    @contextlib.contextmanager
    def session(self, upload_id: str) -> Iterator[ObjectSession]:
        """The session, held (its lease) while the block runs.

        Raises UploadGone when the session is unknown or broken, or was
        finished or cancelled while this caller waited for the lease.
        """
        if not is_valid_upload_id(upload_id):
            raise UploadGone(upload_id)
        with self.locks.hold(_lock(upload_id)) as lease:
            scan = self._scan(upload_id)
            if not scan.has_info or scan.chunks is None:
                raise UploadGone(upload_id)
            yield ObjectSession(self, upload_id, lease, scan.chunks)

    # -- internals ----------------------------------------------------------------
    def _ids(self) -> list[str]:
        """Names below ``uploads/`` that can be session folders (one listing)."""
        try:
            names = self.driver.list(keys.UPLOADS)
        except PathNotFound:
            return []
        return [name for name in names if _addressable(self.driver.name, name)]

    def _scan(self, upload_id: str) -> _Scan:
        objects = list(self.driver.walk(keys.upload_dir(upload_id)))
        names = {o.path.rsplit("/", 1)[-1]: o for o in objects}
        return _Scan(objects, INFO in names, _tile(names))

    def _read_info(self, upload_id: str) -> dict | None:
        """``info.json``, or None when missing or malformed."""
        try:
            info = orjson.loads(self.driver.get_content(keys.upload_info(upload_id)))
        except (PathNotFound, orjson.JSONDecodeError):
            return None
        if not isinstance(info, dict) or not isinstance(info.get("repo"), str) \
                or not isinstance(info.get("started_at"), int):
            return None
        return info

    def _expired(self, started_at: int, size: int) -> bool:
        age = now_ms() - started_at
        return age > self.ttl_ms or (size == 0 and age > self.idle_ms)

    def _state(self, upload_id: str) -> str:
        """"gone" (nothing stored), "fresh", "expired", or "broken" (no readable info, chunks that do
        not tile, a malformed id; after a grace period)."""
        scan = self._scan(upload_id)
        if not scan.objects:
            return "gone"
        info = self._read_info(upload_id) if scan.has_info else None
        if info is None or scan.chunks is None or not is_valid_upload_id(upload_id):
            return "fresh" if now_ms() - scan.newest_ms < BUSY_GRACE_MS else "broken"
        return "expired" if self._expired(info["started_at"], scan.size) else "fresh"

    def _remove_unused(self, upload_id: str) -> bool:
        """Remove an expired or broken session unless a request holds it; True when it is gone.

        Judged again under the lease: a PATCH may have added bytes since the caller looked.
        """
        with self.locks.try_hold(_lock(upload_id)) as held:
            if held is None:
                return False  # a request is reading a body into it: in use
            state = self._state(upload_id)
            if state == "fresh":
                return False
            if state != "gone":
                self.delete(upload_id)
            return True

    def _in_use(self, upload_id: str) -> bool:
        with self.locks.try_hold(_lock(upload_id)) as held:
            return held is None

    def _blob_stored(self, digest: Digest) -> bool:
        if self.blobs is not None:
            return self.blobs.touch(digest)
        try:
            self.driver.stat(keys.blob(digest))
        except PathNotFound:
            return False
        return True


class ObjectSession:
    """An ``UploadSession`` (storage/upload_session.py) held with ``ObjectUploadStore.session``."""

    def __init__(self, store: ObjectUploadStore, upload_id: str, lease: Held, chunks: list[FileInfo]):
        self.store = store
        self.driver = store.driver
        self.id = upload_id
        self.lease = lease
        self.chunks = [chunk.path for chunk in chunks]
        self._size = sum(chunk.size for chunk in chunks)
        self._committed = False

    @property
    def size(self) -> int:
        return self._size

    def append(self, stream: BinaryIO, start: int | None, length: int | None,
               hasher: Hasher | None = None) -> int:
        """Write the body as the object ``chunk-<size>``, committed only when whole; the new size."""
        self._check_open()
        size = self._size
        if start is not None and start != size:
            raise OffsetMismatch(size)
        key = keys.upload_chunk(self.id, size)
        with self.driver.writer(key) as out:  # cancelled on any exit without commit
            written = copy_body(stream, out.write, length, hasher)
            check_length(length, written)
            if not written:
                return size
            self._check_lease()
            out.commit()
        self.chunks.append(key)
        self._size = size + written
        return self._size

    def save_hash(self, size: int, state: str) -> None:
        """The chunks it describes are committed already, so a lost or torn state only costs a read back."""
        self._check_open()
        self.driver.put_content(keys.upload_hash(self.id), orjson.dumps({"offset": size, "state": state}),
                                durable=False)

    def saved_hash(self, size: int) -> str | None:
        try:
            raw = orjson.loads(self.driver.get_content(keys.upload_hash(self.id)))
        except (DriverError, orjson.JSONDecodeError):
            return None
        if not isinstance(raw, dict) or raw.get("offset") != size or not isinstance(raw.get("state"), str):
            return None
        return raw["state"]

    def digest_back(self, algorithm: str) -> tuple[Digest, int]:
        """Stream every chunk through the hash (no chunk is held whole)."""
        self._check_open()
        hasher, total = hashlib.new(algorithm), 0
        for key in self.chunks:
            with self.driver.reader(key) as stream:
                while data := stream.read(CHUNK):
                    hasher.update(data)
                    total += len(data)
        return Digest(algorithm, hasher.hexdigest()), total

    def commit(self, digest: Digest) -> None:
        """Compose the chunks into the blob key (unless stored already), then delete the session."""
        self._check_open()
        self._check_lease()
        if not self.store._blob_stored(digest):
            self.driver.compose(keys.blob(digest), self.chunks)
        self._committed = True
        self.store.delete(self.id)

    def _check_open(self) -> None:
        if self._committed:
            raise UploadGone(self.id)

    def _check_lease(self) -> None:
        """A holder that lost its lease (stalled past its expiry) must not write: another may hold it."""
        if not self.store.locks.still_held(self.lease):
            raise UploadGone(self.id)


def _lock(upload_id: str) -> str:
    return "upload:" + upload_id


def _addressable(driver: str, name: str) -> bool:
    try:
        check_path(driver, keys.upload_dir(name))
    except InvalidPath:
        return False
    return True


def _tile(names: dict[str, FileInfo]) -> list[FileInfo] | None:
    """The chunk objects in offset order, or None when they leave a gap or overlap."""
    chunks = sorted(((int(match.group(1)), info) for name, info in names.items()
                     if (match := _CHUNK.fullmatch(name))), key=lambda pair: pair[0])
    end = 0
    for offset, info in chunks:
        if offset != end:
            return None
        end += info.size
    return [info for _offset, info in chunks]
