"""Upload sessions on the filesystem, shared by every worker and process.

No upload state lives in process memory: the session is a folder holding
the bytes received so far and a small info file. The current offset *is*
the data file's size. Appends take an exclusive ``flock`` on the data file
so two workers never interleave chunks of one upload; a failed append is
truncated back, so the offset only moves by whole accepted chunks. Whoever
finishes or cancels a session holds that lock until the data file is gone
from the session, and whoever gets the lock next checks that the file it
opened is still the session's: otherwise a late PATCH would append to a
file that is already a blob. Chunks are written unbuffered with
``write_all``, so a short write (a full disk) raises and is truncated back
like any other failure.

A session expires ``ttl_seconds`` after it started, or ``idle_seconds``
after it started when it never received a byte (a client that opens
sessions and sends nothing). A session whose data file is locked (a PATCH
or PUT is reading its body) is in use and never expires under it.

The session id says whose it is: 6 hex digits hashing the repository, 6
hashing the client's address, then 20 random ones (80 bits). Counting the
open sessions of the store, of a repository or of a client is one listing
of ``uploads/`` without opening a file (``counts``), cheap enough for every
POST, and exact across workers and processes: the folders are the truth.

The upload service sees none of this: it holds a session with ``session``
and uses the ``FileSession`` it yields (the interface in upload_session.py,
which the object store implements too); committing one moves its data
file into the blob store (``BlobStore.adopt``).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

import orjson

from registry_ext.clock import now_ms
from registry_ext.oci.digest import Digest, digest_file
from registry_ext.oci.reference import is_valid_upload_id
from registry_ext.storage.atomic import file_mode, write_all, write_atomic
from registry_ext.storage.blobs import BlobStore
from registry_ext.storage.layout import Layout
from registry_ext.storage.upload_session import (BUSY_GRACE_MS, CHUNK, Hasher, LengthMismatch, OffsetMismatch,
                                                 SessionCounts, UploadGone, UploadInfo, check_length, copy_body,
                                                 owner_tag)

__all__ = ["UploadStore", "FileSession", "append_locked", "Hasher", "OffsetMismatch", "LengthMismatch",
           "UploadGone", "UploadInfo", "SessionCounts", "BUSY_GRACE_MS", "CHUNK"]


class UploadStore:
    def __init__(self, layout: Layout, ttl_seconds: int, idle_seconds: int | None = None,
                 blobs: BlobStore | None = None):
        self.layout = layout
        self.blobs = blobs if blobs is not None else BlobStore(layout)  # where a committed session goes
        self.ttl_ms = ttl_seconds * 1000
        self.idle_ms = (ttl_seconds if idle_seconds is None else idle_seconds) * 1000

    def create(self, repo: str, client: str = "") -> UploadInfo:
        """Open a new, empty session for ``repo``, opened by ``client`` (its address)."""
        upload_id = owner_tag(repo) + owner_tag(client) + secrets.token_hex(10)
        folder = self.layout.upload_dir(upload_id)
        folder.mkdir(parents=True)
        now = now_ms()
        try:
            self.layout.upload_data(upload_id).touch()
            write_atomic(self.layout.upload_info(upload_id), orjson.dumps({"repo": repo, "started_at": now}),
                         self.layout.tmp)
        except BaseException:
            self.delete(upload_id)  # a full disk: no half-made session stays behind
            raise
        return UploadInfo(upload_id, repo, now, 0)

    def get(self, upload_id: str) -> UploadInfo | None:
        """The session, or None when unknown, malformed or expired."""
        if not is_valid_upload_id(upload_id):
            return None
        try:
            info = orjson.loads(self.layout.upload_info(upload_id).read_bytes())
            size = os.stat(self.layout.upload_data(upload_id)).st_size
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        folder = self.layout.upload_dir(upload_id)
        if self._expired(info["started_at"], size) and self._remove_unused(folder):
            return None
        return UploadInfo(upload_id, info["repo"], info["started_at"], size)

    def counts(self, repo: str, client: str) -> SessionCounts:
        """Open sessions in the store, of ``repo`` and of ``client``, from the folder names alone."""
        repo_tag, client_tag = owner_tag(repo), owner_tag(client)
        total = of_repo = of_client = 0
        with os.scandir(self.layout.uploads) as entries:
            for entry in entries:
                total += 1
                of_repo += entry.name.startswith(repo_tag)
                of_client += entry.name[6:12] == client_tag
        return SessionCounts(total, of_repo, of_client)

    def sweep(self) -> int:
        """Remove every expired, broken or data-less session that no request is using; the count."""
        removed = 0
        for folder in list(self.layout.uploads.iterdir()):
            if self._state(folder) != "fresh" and self._remove_unused(folder):
                removed += 1
        return removed

    def _expired(self, started_at: int, size: int) -> bool:
        age = now_ms() - started_at
        return age > self.ttl_ms or (size == 0 and age > self.idle_ms)

    def _state(self, folder: Path) -> str:
        """"fresh", "expired", or "broken" (no readable info, no data file; after a grace period)."""
        try:
            started = orjson.loads((folder / "info.json").read_bytes())["started_at"]
            size = os.stat(folder / "data").st_size
            if not is_valid_upload_id(folder.name) or not isinstance(started, int):
                raise ValueError(folder.name)
        except (OSError, ValueError, KeyError, TypeError):
            try:
                recent = now_ms() - folder.stat().st_mtime * 1000 < BUSY_GRACE_MS
            except FileNotFoundError:
                return "fresh"  # gone already
            return "fresh" if recent else "broken"
        return "expired" if self._expired(started, size) else "fresh"

    def _remove_unused(self, folder: Path) -> bool:
        """Remove an expired or broken session unless a request holds its data file; True when it is gone.

        The lock is taken without waiting and held while the folder goes, so
        a PATCH that gets it next finds its file gone (``locked``). The
        session is judged again under the lock: a PATCH may have added bytes
        since the caller looked.
        """
        try:
            handle = open(folder / "data", "rb")
        except FileNotFoundError:
            if not folder.exists():
                return True
            if self._state(folder) == "fresh":  # finished a moment ago, or being created
                return False
            shutil.rmtree(folder, ignore_errors=True)
            return True
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a request is reading a body into it: in use
            if self._state(folder) == "fresh":
                return False
            shutil.rmtree(folder, ignore_errors=True)
        return True

    @contextlib.contextmanager
    def locked(self, upload_id: str) -> Iterator[BinaryIO]:
        """The session's data file, open and exclusively locked while the block runs.

        Raises UploadGone when the session has no data file, or when the file
        opened was finished or removed while this caller waited for the lock.
        """
        path = self.data_path(upload_id)
        try:
            handle = open(path, "r+b", buffering=0)  # unbuffered: append_locked sees every short write
        except FileNotFoundError:
            raise UploadGone(upload_id) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if not _same_file(path, handle):
                raise UploadGone(upload_id)
            yield handle

    @contextlib.contextmanager
    def session(self, upload_id: str) -> Iterator[FileSession]:
        """The session, held (its data file locked) while the block runs; raises UploadGone as ``locked``."""
        with self.locked(upload_id) as handle:
            yield FileSession(self, upload_id, handle)

    def data_path(self, upload_id: str) -> Path:
        return self.layout.upload_data(upload_id)

    def save_hash(self, upload_id: str, handle: BinaryIO, offset: int, state: str) -> None:
        """Record the running hash of the data file's first ``offset`` bytes (the caller holds ``locked``).

        The data is fdatasynced first, so a saved state only ever describes
        bytes that are on disk: after a power loss the file is either as the
        state says or shorter (then ``offset`` no longer matches and the
        state is ignored). The state itself needs no fsync for the same
        reason: lost or torn, it is ignored and the data is read back.
        """
        os.fdatasync(handle.fileno())
        path = self.layout.upload_hash(upload_id)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode())
        try:
            write_all(fd, orjson.dumps({"offset": offset, "state": state}))
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def saved_hash(self, upload_id: str, offset: int) -> str | None:
        """The state saved for exactly ``offset`` bytes, else None (none saved, stale, unreadable)."""
        try:
            raw = orjson.loads(self.layout.upload_hash(upload_id).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(raw, dict) or raw.get("offset") != offset or not isinstance(raw.get("state"), str):
            return None
        return raw["state"]

    def delete(self, upload_id: str) -> None:
        shutil.rmtree(self.layout.upload_dir(upload_id), ignore_errors=True)

    def stale(self) -> list[str]:
        """Ids of sessions that are expired, malformed or without data (nothing is changed).

        A session loses its data file when a worker died after moving the
        verified bytes into place but before removing the session.
        """
        return [folder.name for folder in sorted(self.layout.uploads.glob("*"))
                if self._state(folder) != "fresh" and not _in_use(folder)]

    def purge(self, older_than_seconds: int) -> int:
        """Remove sessions started more than ``older_than_seconds`` ago; return the count."""
        cutoff = now_ms() - older_than_seconds * 1000
        removed = 0
        for folder in self.layout.uploads.glob("*"):
            try:
                started = orjson.loads(self.layout.upload_info(folder.name).read_bytes())["started_at"]
            except (OSError, ValueError, KeyError):
                started = int(folder.stat().st_mtime * 1000)
            if started < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


def _in_use(folder: Path) -> bool:
    """Whether a request holds the session's data file (reading a body into it)."""
    try:
        with open(folder / "data", "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False



def append_locked(handle: BinaryIO, stream: BinaryIO, start: int | None, length: int | None,
                  hasher: Hasher | None = None) -> int:
    """Append a body to a data file held with ``locked`` and return the new size.

    ``start`` (from Content-Range) must equal the current size; ``length``
    (from Content-Range or Content-Length), when given, must equal the
    bytes read. ``hasher``, when given, is fed every appended byte (as they
    pass, so a blob sent whole is not read back to be verified). Raises
    OffsetMismatch or LengthMismatch, leaving the session as it was.
    """
    size = handle.seek(0, os.SEEK_END)
    if start is not None and start != size:
        raise OffsetMismatch(size)
    try:
        written = copy_body(stream, lambda chunk: write_all(handle.fileno(), chunk), length, hasher)
        check_length(length, written)
    except BaseException:
        os.ftruncate(handle.fileno(), size)  # a full disk, a short body, a dropped client
        raise
    return size + written


def _same_file(path: Path, handle: BinaryIO) -> bool:
    """Whether ``path`` still names the open file (not so once it was moved into the blob store)."""
    try:
        here, opened = os.stat(path), os.fstat(handle.fileno())
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino)


class FileSession:
    """An ``UploadSession`` on the filesystem: the locked data file of ``UploadStore.session``."""

    def __init__(self, store: UploadStore, upload_id: str, handle: BinaryIO):
        self.store = store
        self.id = upload_id
        self.handle = handle
        self._committed = False

    @property
    def size(self) -> int:
        return os.fstat(self.handle.fileno()).st_size

    def append(self, stream: BinaryIO, start: int | None, length: int | None,
               hasher: Hasher | None = None) -> int:
        self._check_open()
        return append_locked(self.handle, stream, start, length, hasher)

    def save_hash(self, size: int, state: str) -> None:
        self.store.save_hash(self.id, self.handle, size, state)

    def saved_hash(self, size: int) -> str | None:
        return self.store.saved_hash(self.id, size)

    def digest_back(self, algorithm: str) -> tuple[Digest, int]:
        self._check_open()
        self.handle.seek(0)
        return digest_file(self.handle, algorithm)

    def commit(self, digest: Digest) -> None:
        """Move the data file into the blob store (``BlobStore.adopt``). The lock stays held until the
        block ends, so a request waiting for it finds the file gone (``locked``)."""
        self._check_open()
        self.store.blobs.adopt(digest, self.store.data_path(self.id))
        self._committed = True

    def _check_open(self) -> None:
        if self._committed:
            raise UploadGone(self.id)
