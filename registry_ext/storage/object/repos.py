"""Per-repository records on an object store: the same files as storage/repos.py, through a driver.

Blob links, manifest links, tags and tag history are the same bytes at
the same keys (object/keys.py) as on a filesystem, so ``reindex`` reads
either. Each record is one ``put_content`` (whole or nothing). The
repository lock is a lease (``locks.hold("repo:<name>")``, storage/locks.py)
instead of a ``flock``, so hosts sharing a bucket serialise too.

Differences a caller may notice: S3 has no empty folders, so a repository
whose last tag, manifest and blob link were deleted no longer ``exists``
(on a filesystem its empty ``_tags`` folder keeps it); and a link's "mtime"
is the time of its last write (``link_blob`` rewrites it: S3 cannot touch).

Garbage collection (docs/gc.md#on-s3): ``link_blob`` writes and
``take_blob_link`` reads the link's time and deletes it under the blob's
lease (a ``Guard``, storage/locks.py), so a link written while gc decides
is either seen (kept) or written after the delete (there again).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from typing import ContextManager, Iterator

import orjson

from registry_ext import failpoints
from registry_ext.oci.digest import ALGORITHMS, Digest
from registry_ext.storage.driver.base import PathNotFound, StorageDriver, join
from registry_ext.storage.history import HistoryEvent, TagHistory
from registry_ext.storage.locks import Guard, Held, Locks
from registry_ext.storage.object import NotSupportedOnObjectStorage, keys
from registry_ext.storage.object.history import ObjectSegments
from registry_ext.storage.repos import ManifestRecord, TagRecord

RECORDS = ("_blobs", "_manifests", "_tags")
READERS = 8  # concurrent GETs when reading every tag file of a repository


class ObjectRepoStore:
    def __init__(self, driver: StorageDriver, locks: Locks, guard: Guard | None = None):
        self.driver = driver
        self.locks = locks
        self.guard = guard  # gc's lease per blob; None: take_blob_link is refused
        self._held: dict[str, Held] = {}
        self._guard = threading.Lock()

    # -- repositories -------------------------------------------------------
    def exists(self, name: str) -> bool:
        """True once anything is stored: a parent folder of another repository does not count."""
        return any(child in RECORDS for child in self._list(keys.repo(name)))

    def names(self) -> Iterator[str]:
        """Every repository: a folder holding ``_blobs``, ``_manifests`` or ``_tags``.

        One listing per folder (never a walk of every object), parents before their children.
        """
        yield from self._names_below("")

    def _names_below(self, name: str) -> Iterator[str]:
        children = self._list(keys.repo(name))
        if name and any(child in RECORDS for child in children):
            yield name
        for child in children:
            if not child.startswith("_"):
                yield from self._names_below(join(name, child))

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Serialise tag and manifest changes of one repository across processes and hosts.

        Yields None like the filesystem lock; ``held(name)`` is the lease, for ``locks.still_held``.
        """
        with self.locks.hold("repo:" + name) as lease:
            with self._holding(name, lease):
                yield

    @contextlib.contextmanager
    def try_lock(self, name: str) -> Iterator[bool]:
        """The repository lock if it is free right now (True), else False without waiting.

        A lease whose holder died is free once it expired.
        """
        with self.locks.try_hold("repo:" + name) as lease:
            if lease is None:
                yield False
                return
            with self._holding(name, lease):
                yield True

    def held(self, name: str) -> Held | None:
        """The lease of the lock on ``name`` this process holds now, or None."""
        with self._guard:
            return self._held.get(name)

    def fence(self, name: str) -> Held | None:
        """The lease this process writes ``name`` under: index updates made under the lock check it is
        still held (index/writer.py), so a host that stalled past its lease never lands a late one."""
        return self.held(name)

    @contextlib.contextmanager
    def _holding(self, name: str, lease: Held) -> Iterator[None]:
        with self._guard:
            self._held[name] = lease
        try:
            yield
        finally:
            with self._guard:
                if self._held.get(name) is lease:
                    del self._held[name]

    # -- blob links ---------------------------------------------------------
    def link_blob(self, name: str, digest: Digest) -> None:
        """Write the link (again: its time says when a client was last promised the blob here), under
        the blob's lease: a take of the link in progress ends first."""
        with self._guarded(digest):
            self.driver.put_content(keys.blob_link(name, digest), b"")

    def blob_links(self, name: str) -> Iterator[tuple[Digest, float]]:
        """Every blob link of ``name`` with its time (epoch seconds)."""
        for algorithm in ALGORITHMS:
            for info in self.driver.walk(join(keys.repo(name), "_blobs", algorithm)):
                yield Digest(algorithm, info.path.rpartition("/")[2]), info.modified_ms / 1000

    def take_blob_link(self, name: str, digest: Digest, cutoff: float) -> bool:
        """Remove the link unless written after ``cutoff``; True when removed. Decided and deleted under
        the blob's lease, which ``link_blob`` holds while it writes (docs/gc.md#on-s3)."""
        if self.guard is None:
            raise NotSupportedOnObjectStorage("garbage collection (take_blob_link)")
        key = keys.blob_link(name, digest)
        with self.guard.hold(str(digest)) as lease:
            try:
                info = self.driver.stat(key)
            except PathNotFound:
                return False
            if info.modified_ms / 1000 > cutoff:
                return False
            failpoints.hit("gc.before-delete")
            return self.guard.still_held(lease) and self.driver.delete(key)

    def _guarded(self, digest: Digest) -> ContextManager[Held | None]:
        return self.guard.hold(str(digest)) if self.guard is not None else contextlib.nullcontext()

    def has_blob(self, name: str, digest: Digest) -> bool:
        return self._exists(keys.blob_link(name, digest))

    def unlink_blob(self, name: str, digest: Digest) -> bool:
        return self.driver.delete(keys.blob_link(name, digest))

    # -- manifests ----------------------------------------------------------
    def put_manifest(self, name: str, record: ManifestRecord, digest: Digest) -> None:
        data = orjson.dumps({"media_type": record.media_type, "size": record.size,
                             "pushed_at": record.pushed_at})
        self.driver.put_content(keys.manifest_link(name, digest), data)

    def manifest(self, name: str, digest: Digest) -> ManifestRecord | None:
        data = self._get(keys.manifest_link(name, digest))
        if data is None:
            return None
        raw = orjson.loads(data)
        return ManifestRecord(str(digest), raw["media_type"], raw["size"], raw["pushed_at"])

    def delete_manifest(self, name: str, digest: Digest) -> bool:
        return self.driver.delete(keys.manifest_link(name, digest))

    def manifest_digests(self, name: str) -> list[Digest]:
        """The digests of every manifest link of ``name`` (a listing, no object read)."""
        folder = keys.manifests_dir(name)
        return [Digest(algorithm, entry) for algorithm in ALGORITHMS
                for entry in self._list(join(folder, algorithm))]

    def manifests(self, name: str) -> Iterator[ManifestRecord]:
        for digest in self.manifest_digests(name):
            record = self.manifest(name, digest)
            if record is not None:
                yield record

    # -- tags ---------------------------------------------------------------
    def tag(self, name: str, tag: str) -> TagRecord | None:
        data = self._get(keys.tag(name, tag))
        return None if data is None else _tag_record(tag, data)

    def put_tag(self, name: str, record: TagRecord) -> None:
        data = orjson.dumps({"digest": record.digest, "created_at": record.created_at,
                             "updated_at": record.updated_at})
        self.driver.put_content(keys.tag(name, record.tag), data)

    def delete_tag(self, name: str, tag: str) -> bool:
        return self.driver.delete(keys.tag(name, tag))

    def tags(self, name: str) -> Iterator[TagRecord]:
        for tag in self._list(keys.tags_dir(name)):
            record = self.tag(name, tag)
            if record is not None:
                yield record

    def tags_pointing_at(self, name: str, digest: str) -> list[str]:
        """Every tag whose file names ``digest``, in byte order: one GET per tag (``READERS`` at a time).

        Storage is the truth about which tags point at a manifest (see RepoStore.tags_pointing_at).
        """
        tags = self._list(keys.tags_dir(name))
        needle = digest.encode()
        found = []
        for tag, data in zip(tags, self._get_many([keys.tag(name, tag) for tag in tags])):
            if data is not None and needle in data and orjson.loads(data)["digest"] == digest:
                found.append(tag)
        return found

    # -- tag history --------------------------------------------------------
    def tag_history(self, name: str, tag: str) -> TagHistory:
        """One tag's history log (storage/history.py) on this store; a new view per call."""
        return TagHistory(None, name, tag, ObjectSegments(self.driver, name, tag))

    def record_history(self, name: str, event: HistoryEvent) -> HistoryEvent:
        """Append an event (under the repository lock); the event as stored (time made monotonic)."""
        return self.tag_history(name, event.tag).append(event)

    def last_history(self, name: str, tag: str) -> HistoryEvent | None:
        return self.tag_history(name, tag).last()

    def history(self, name: str, tag: str) -> list[HistoryEvent]:
        """Every event of one tag, oldest first (a whole read: check and tests, never a request)."""
        return self.tag_history(name, tag).events()

    def history_tags(self, name: str) -> list[str]:
        """Tags that have a history in ``name`` (one listing: check only)."""
        return sorted({entry.partition("~")[0] for entry in self._list(keys.history_dir(name))})

    # -- internals ------------------------------------------------------------
    def _list(self, path: str) -> list[str]:
        try:
            return self.driver.list(path)
        except PathNotFound:
            return []

    def _get(self, path: str) -> bytes | None:
        try:
            return self.driver.get_content(path)
        except PathNotFound:
            return None

    def _get_many(self, paths: list[str]) -> list[bytes | None]:
        if len(paths) < 2:
            return [self._get(path) for path in paths]
        with concurrent.futures.ThreadPoolExecutor(min(READERS, len(paths))) as pool:
            return list(pool.map(self._get, paths))

    def _exists(self, path: str) -> bool:
        try:
            self.driver.stat(path)
        except PathNotFound:
            return False
        return True


def _tag_record(tag: str, data: bytes) -> TagRecord:
    raw = orjson.loads(data)
    return TagRecord(tag, raw["digest"], raw["created_at"], raw["updated_at"])
