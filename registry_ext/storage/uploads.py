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
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

import orjson

from registry_ext import failpoints
from registry_ext.clock import now_ms
from registry_ext.oci.reference import is_valid_upload_id
from registry_ext.storage.atomic import file_mode, write_all, write_atomic
from registry_ext.storage.layout import Layout

CHUNK = 1 << 20


class Hasher(Protocol):
    """What ``append_locked`` feeds the appended bytes to (``hashlib``, ``oci.resumable.ResumableHash``)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class OffsetMismatch(Exception):
    """A chunk did not start at the current offset."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class LengthMismatch(Exception):
    """The body was shorter or longer than announced."""


class UploadGone(Exception):
    """The session was finished, cancelled or removed (possibly while the caller waited for it)."""


@dataclasses.dataclass(frozen=True)
class UploadInfo:
    id: str
    repo: str
    started_at: int
    size: int


@dataclasses.dataclass(frozen=True)
class SessionCounts:
    """Sessions on storage (expired ones not yet removed included)."""

    total: int
    repo: int
    client: int


BUSY_GRACE_MS = 60_000  # a folder changed this recently without info or data is being created or finished


class UploadStore:
    def __init__(self, layout: Layout, ttl_seconds: int, idle_seconds: int | None = None):
        self.layout = layout
        self.ttl_ms = ttl_seconds * 1000
        self.idle_ms = (ttl_seconds if idle_seconds is None else idle_seconds) * 1000

    def create(self, repo: str, client: str = "") -> UploadInfo:
        """Open a new, empty session for ``repo``, opened by ``client`` (its address)."""
        upload_id = _owner_tag(repo) + _owner_tag(client) + secrets.token_hex(10)
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
        repo_tag, client_tag = _owner_tag(repo), _owner_tag(client)
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


def _owner_tag(owner: str) -> str:
    """6 hex digits naming a repository or a client address in session ids."""
    return hashlib.blake2b(owner.encode(), digest_size=3).hexdigest()


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
        written = _copy(stream, handle.fileno(), length, hasher)
        if length is not None and written != length:
            raise LengthMismatch(f"expected {length} bytes, got {written}")
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


def _copy(stream: BinaryIO, fd: int, length: int | None, hasher: Hasher | None) -> int:
    """Copy the stream to the file in bounded chunks (hashing them when asked); never more than length+1 bytes."""
    written = 0
    while True:
        want = CHUNK if length is None else min(CHUNK, length - written + 1)
        if want <= 0:
            break
        chunk = stream.read(want)
        if not chunk:
            break
        write_all(fd, chunk)
        if hasher is not None:
            hasher.update(chunk)  # hashlib releases the GIL for pieces this large
        if not written:
            failpoints.hit("upload.mid-chunk")
        written += len(chunk)
    return written

