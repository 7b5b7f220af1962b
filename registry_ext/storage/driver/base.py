"""The storage driver seam: bytes by path, nothing about registries.

Modelled on distribution's ``registry/storage/driver/storagedriver.go``: a
small, path-based interface that every byte on storage goes through, with
two implementations (``filesystem.py``, ``s3.py``) proven by one contract
suite (``tests/contract/test_driver.py``). Registry semantics (links, tags,
uploads, the journal) live above it, in ``storage/``.

Paths are relative, ``/``-separated keys (``blobs/sha256/ab/ab...``): no
leading slash, no empty, ``.`` or ``..`` component; a component holds only
``A-Z a-z 0-9 _ . - ~`` (``~`` names tag history segments, ``<tag>~<n>``,
storage/layout.py). A "directory" exists while some file lies below it
(S3 has no directories).

Atomicity: ``put_content``, ``writer().commit()`` and ``move`` make the new
bytes visible whole or not at all; a reader never sees a mix. Durability:
once they return, the bytes survive a crash of this process and (filesystem)
of the machine, unless ``durable=False`` was asked for.
"""
from __future__ import annotations

import abc
import dataclasses
import re
from typing import BinaryIO, Iterator

_COMPONENT = re.compile(r"[A-Za-z0-9_.~\-]+")


class DriverError(Exception):
    """A storage operation failed for a reason the caller cannot fix by retrying at once."""

    def __init__(self, driver: str, detail: str):
        super().__init__(f"{driver}: {detail}")
        self.driver = driver
        self.detail = detail


class PathNotFound(DriverError):
    def __init__(self, driver: str, path: str):
        super().__init__(driver, f"path not found: {path}")
        self.path = path


class InvalidPath(DriverError):
    def __init__(self, driver: str, path: str):
        super().__init__(driver, f"invalid path: {path[:200]!r}")
        self.path = path


class InvalidOffset(DriverError):
    def __init__(self, driver: str, path: str, offset: int):
        super().__init__(driver, f"invalid offset {offset} for {path}")
        self.path = path
        self.offset = offset


class StorageFull(DriverError):
    """No space (or quota) left on the device or in the bucket."""


class Unavailable(DriverError):
    """The backend did not answer or answered with a transient error (retry later: 503)."""


@dataclasses.dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified_ms: int
    is_dir: bool = False


class FileWriter(abc.ABC):
    """A new object written as a stream; visible at its path only after ``commit``."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int:
        """Write all of ``data`` (short writes are retried inside); return len(data)."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Bytes written so far."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the object visible, whole and durable. The writer is finished afterwards."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Drop everything written. The writer is finished afterwards."""

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.finished:
            self.cancel()

    finished: bool = False


class StorageDriver(abc.ABC):
    """Bytes by path. Implementations raise only DriverError and its subclasses."""

    name: str = "driver"
    #: ``append`` is supported (the filesystem): uploads append to one data file instead of
    #: storing chunks as separate objects.
    can_append: bool = False

    @abc.abstractmethod
    def get_content(self, path: str) -> bytes:
        """The whole object. Raises PathNotFound."""

    @abc.abstractmethod
    def put_content(self, path: str, data: bytes, durable: bool = True) -> None:
        """Create or replace the object atomically."""

    @abc.abstractmethod
    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create the object unless it exists (True when this call created it)."""

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A stream of the object from ``offset`` (``length`` bytes, or to the end).

        Raises PathNotFound, InvalidOffset (offset beyond the size).
        """

    @abc.abstractmethod
    def writer(self, path: str) -> FileWriter:
        """A writer for a new object at ``path`` (replacing any, at commit)."""

    @abc.abstractmethod
    def stat(self, path: str) -> FileInfo:
        """Size and time of an object, or a directory (a prefix with objects below). Raises PathNotFound."""

    @abc.abstractmethod
    def list(self, path: str) -> list[str]:
        """Names of the direct children of a directory (files and directories), sorted.

        ``""`` lists the root. Raises PathNotFound when nothing lies below ``path``.
        """

    @abc.abstractmethod
    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every object below ``path`` (recursively), in path order."""

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Move an object to ``dst`` (replacing it) atomically, durably. Raises PathNotFound."""

    @abc.abstractmethod
    def delete(self, path: str) -> bool:
        """Delete an object, or a directory with everything below it. False when nothing was there."""

    @abc.abstractmethod
    def compose(self, dst: str, sources: list[str]) -> int:
        """Write the concatenation of ``sources`` to ``dst`` (atomically, durably); return its size.

        The sources stay. Used to finish chunked uploads on stores without append.
        """

    def append(self, path: str, stream: BinaryIO, limit: int | None) -> int:
        """Append up to ``limit`` bytes (or to the stream's end) to ``path`` (``can_append`` only).

        Returns the bytes appended; on any failure the file is cut back to its old size.
        """
        raise DriverError(self.name, "append is not supported")

    def redirect_url(self, path: str, method: str = "GET", expires: int = 600) -> str | None:
        """A URL the client may fetch the object from directly, or None (bytes go through us)."""
        return None

    def local_path(self, path: str) -> str | None:
        """The object's file on a local filesystem (for sendfile/X-Accel), or None."""
        return None

    def check(self) -> None:
        """Raise DriverError when the store cannot be used (bucket missing, credentials refused).
        The default has nothing to check; drivers with a remote store override it."""
        return None


def check_path(driver: str, path: str, *, allow_root: bool = False) -> str:
    """Validate a driver path; return it. Raises InvalidPath."""
    if path == "" and allow_root:
        return path
    if not path or len(path) > 1024 or path.startswith("/") or path.endswith("/"):
        raise InvalidPath(driver, path)
    for part in path.split("/"):
        if part in ("", ".", "..") or not _COMPONENT.fullmatch(part):
            raise InvalidPath(driver, path)
    return path


def join(*parts: str) -> str:
    """Join path components with ``/`` (empty parts skipped)."""
    return "/".join(p for p in parts if p)
