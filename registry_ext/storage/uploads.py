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
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

import orjson

from registry_ext import failpoints
from registry_ext.clock import now_ms
from registry_ext.oci.reference import is_valid_upload_id
from registry_ext.storage.atomic import write_all, write_atomic
from registry_ext.storage.layout import Layout

CHUNK = 1 << 20


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


class UploadStore:
    def __init__(self, layout: Layout, ttl_seconds: int):
        self.layout = layout
        self.ttl_ms = ttl_seconds * 1000

    def create(self, repo: str) -> UploadInfo:
        """Open a new, empty session for ``repo``."""
        upload_id = uuid.uuid4().hex
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
        if now_ms() - info["started_at"] > self.ttl_ms:
            self.delete(upload_id)
            return None
        return UploadInfo(upload_id, info["repo"], info["started_at"], size)

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

    def delete(self, upload_id: str) -> None:
        shutil.rmtree(self.layout.upload_dir(upload_id), ignore_errors=True)

    def stale(self) -> list[str]:
        """Ids of sessions that are expired, malformed or without data (nothing is changed).

        A session loses its data file when a worker died after moving the
        verified bytes into place but before removing the session.
        """
        found = []
        for folder in sorted(self.layout.uploads.glob("*")):
            if now_ms() - folder.stat().st_mtime * 1000 < 60_000:
                continue  # being created right now, or just used
            try:
                started = orjson.loads(self.layout.upload_info(folder.name).read_bytes())["started_at"]
                fresh = (is_valid_upload_id(folder.name) and now_ms() - started <= self.ttl_ms
                         and self.layout.upload_data(folder.name).is_file())
            except (OSError, ValueError, KeyError, TypeError):
                fresh = False
            if not fresh:
                found.append(folder.name)
        return found

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


def append_locked(handle: BinaryIO, stream: BinaryIO, start: int | None, length: int | None) -> int:
    """Append a body to a data file held with ``locked`` and return the new size.

    ``start`` (from Content-Range) must equal the current size; ``length``
    (from Content-Range or Content-Length), when given, must equal the
    bytes read. Raises OffsetMismatch or LengthMismatch, leaving the
    session as it was.
    """
    size = handle.seek(0, os.SEEK_END)
    if start is not None and start != size:
        raise OffsetMismatch(size)
    try:
        written = _copy(stream, handle.fileno(), length)
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


def _copy(stream: BinaryIO, fd: int, length: int | None) -> int:
    """Copy the stream to the file in bounded chunks; never more than length+1 bytes."""
    written = 0
    while True:
        want = CHUNK if length is None else min(CHUNK, length - written + 1)
        if want <= 0:
            break
        chunk = stream.read(want)
        if not chunk:
            break
        write_all(fd, chunk)
        if not written:
            failpoints.hit("upload.mid-chunk")
        written += len(chunk)
    return written

