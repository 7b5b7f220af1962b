"""What both upload stores share: the session interface the upload service uses, its errors and records.

An upload session is used only inside its store's ``session(upload_id)``
block, which holds the session's lock (a ``flock`` on the filesystem, a
lease on an object store) and yields an ``UploadSession``: the service
appends chunks, keeps the running hash, reads the bytes back when it has
none, and commits verified bytes as a blob without ever seeing a file
handle or a key. ``uploads.UploadStore`` implements it on a local
filesystem, ``object/uploads.ObjectUploadStore`` on any storage driver.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import BinaryIO, Callable, Protocol

from registry_ext import failpoints
from registry_ext.oci.digest import Digest

CHUNK = 1 << 20
BUSY_GRACE_MS = 60_000  # a session changed this recently without info or data is being created or finished


class Hasher(Protocol):
    """What ``append`` feeds the appended bytes to (``hashlib``, ``oci.resumable.ResumableHash``)."""

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


class UploadSession(Protocol):
    """One session, held exclusively while its store's ``session`` block runs."""

    id: str

    @property
    def size(self) -> int:
        """Bytes accepted so far (the offset the next chunk must start at)."""

    def append(self, stream: BinaryIO, start: int | None, length: int | None,
               hasher: Hasher | None = None) -> int:
        """Append a body and return the new size.

        ``start`` (from Content-Range) must equal ``size``; ``length``, when
        given, must equal the bytes read. ``hasher`` is fed every appended
        byte. Raises OffsetMismatch or LengthMismatch, leaving the session as
        it was.
        """

    def save_hash(self, size: int, state: str) -> None:
        """Keep the running hash state of the first ``size`` bytes for a later request."""

    def saved_hash(self, size: int) -> str | None:
        """The state saved for exactly ``size`` bytes, else None (none saved, stale, unreadable)."""

    def digest_back(self, algorithm: str) -> tuple[Digest, int]:
        """Digest and size of the bytes so far, read back (streamed)."""

    def commit(self, digest: Digest) -> None:
        """Make the (verified) bytes the blob ``digest``; the session holds no data afterwards."""


def owner_tag(owner: str) -> str:
    """6 hex digits naming a repository or a client address in session ids."""
    return hashlib.blake2b(owner.encode(), digest_size=3).hexdigest()


def copy_body(stream: BinaryIO, write: Callable[[bytes], object], length: int | None,
              hasher: Hasher | None) -> int:
    """Copy a body to ``write`` in bounded chunks (hashing them when asked); never more than length+1 bytes.

    Reading one byte past ``length`` is how a body longer than announced is
    caught without reading it all.
    """
    written = 0
    while True:
        want = CHUNK if length is None else min(CHUNK, length - written + 1)
        if want <= 0:
            break
        chunk = stream.read(want)
        if not chunk:
            break
        write(chunk)
        if hasher is not None:
            hasher.update(chunk)  # hashlib releases the GIL for pieces this large
        if not written:
            failpoints.hit("upload.mid-chunk")
        written += len(chunk)
    return written


def check_length(length: int | None, written: int) -> None:
    """Raise LengthMismatch unless ``written`` is the announced ``length`` (None: anything goes)."""
    if length is not None and written != length:
        raise LengthMismatch(f"expected {length} bytes, got {written}")
