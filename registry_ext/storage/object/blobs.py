"""Content-addressed blobs on an object store: storage/blobs.py's BlobStore through a driver.

A blob key exists only once its bytes were verified against the digest,
as on a filesystem: ``put_bytes`` writes verified bytes, ``put_file``
uploads a verified local file (a pull-through fill), and either is
visible whole or not at all. Clients may fetch a blob from the store
directly (``redirect_url``) when the driver offers presigned URLs.

Garbage collection (docs/gc.md#on-s3): S3 has no rename and no way to
bump an object's time, so a ``Guard`` (storage/locks.py, a lease per
digest in Redis) orders writers and gc. A writer that would rely on a
stored blob (``touch``, and ``put_*`` finding it stored) holds the lease
while it checks the blob is there and records the touch; ``take`` holds
it while it reads the object's time and the touch and deletes. Either the
touch comes first and gc keeps the blob, or the delete does and the
writer finds no blob (it writes it again, or promises nothing). A new
blob needs no lease: its object's time is when it was written. A take is
one DELETE, so nothing is ever half-taken: ``taken_pending`` is False and
``recover_taken`` 0. Without a guard (component tests) ``touch`` only
says whether the blob is there and ``take`` is refused.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import BinaryIO, ContextManager, Iterator

from registry_ext import failpoints
from registry_ext.oci.digest import ALGORITHMS, Digest
from registry_ext.storage.blobs import StoredBlob
from registry_ext.storage.driver.base import PathNotFound, StorageDriver
from registry_ext.storage.locks import Guard, Held
from registry_ext.storage.object import NotSupportedOnObjectStorage, keys

CHUNK = 1 << 20  # bytes read from a local file per write


class ObjectBlobStore:
    def __init__(self, driver: StorageDriver, guard: Guard | None = None):
        self.driver = driver
        self.guard = guard

    def size(self, digest: Digest) -> int | None:
        """Size of the blob, or None when it is not stored."""
        try:
            return self.driver.stat(keys.blob(digest)).size
        except PathNotFound:
            return None

    def open(self, digest: Digest) -> BinaryIO | None:
        """A readable binary stream of the blob, or None when it is not stored."""
        try:
            return self.driver.reader(keys.blob(digest))
        except PathNotFound:
            return None

    def read(self, digest: Digest) -> bytes | None:
        handle = self.open(digest)
        if handle is None:
            return None
        with handle:
            return handle.read()

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store verified bytes (a manifest, the empty blob) unless already there (then touch them)."""
        if not self.touch(digest):
            self.driver.put_if_absent(keys.blob(digest), data)

    def put_file(self, digest: Digest, path: str | Path) -> None:
        """Upload a verified local file (a pull-through fill) unless the blob is already there (then
        touch it: content-addressed, the same bytes).

        Streamed ``CHUNK`` bytes at a time; visible only at commit, dropped on any failure.
        """
        if self.touch(digest):
            return
        with open(path, "rb") as source, self.driver.writer(keys.blob(digest)) as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
            out.commit()

    def adopt(self, digest: Digest, src: Path) -> None:
        """Upload a verified local file (a finished pull-through fill), then remove it."""
        self.put_file(digest, src)
        Path(src).unlink(missing_ok=True)

    def open_range(self, digest: Digest, start: int, length: int) -> BinaryIO | None:
        """A stream of ``length`` bytes of the blob from ``start`` (one ranged GET), or None."""
        if length <= 0:
            return io.BytesIO(b"")
        try:
            return self.driver.reader(keys.blob(digest), start, length)
        except PathNotFound:
            return None

    def redirect_url(self, digest: Digest) -> str | None:
        """A URL the client may fetch the blob from directly, or None (the bytes go through us)."""
        return self.driver.redirect_url(keys.blob(digest))

    def touch(self, digest: Digest) -> bool:
        """Mark the stored blob as relied on now (a mount, an upload of the same bytes); False when it
        is not stored (gc may have taken it). Under the blob's lease, so a take in progress ends first."""
        with self._held(digest):
            if self.size(digest) is None:
                return False
            if self.guard is not None:
                self.guard.touch(str(digest))
            return True

    def stored(self) -> Iterator[StoredBlob]:
        """Every blob with its size and time, in key order (one listing of ``blobs/``)."""
        for info in self.driver.walk(keys.BLOBS):
            parts = info.path.split("/")  # blobs/<alg>/<hex[:2]>/<hex>
            if len(parts) != 4 or len(parts[3]) != ALGORITHMS.get(parts[1], -1):
                continue  # not a blob (a stray object): never gc's to judge
            yield StoredBlob(Digest(parts[1], parts[3]), info.size, info.modified_ms / 1000)

    def recover_taken(self) -> int:
        """Nothing to put back: a take is one DELETE under the blob's lease, never half done."""
        return 0

    def taken_pending(self) -> bool:
        """False: nothing is ever half-taken here (housekeeping asks every tick)."""
        return False

    def take(self, digest: Digest, cutoff: float) -> int | None:
        """Delete the blob unless written or touched after ``cutoff``; its size when deleted.

        Decided and deleted under the blob's lease, which every writer relying on a stored blob holds
        while it touches it (docs/gc.md#on-s3). None when kept, not there, or the lease was lost.
        """
        if self.guard is None:
            raise NotSupportedOnObjectStorage("garbage collection (take)")
        with self.guard.hold(str(digest)) as lease:
            try:
                info = self.driver.stat(keys.blob(digest))
            except PathNotFound:
                return None
            touched = self.guard.touched_at(str(digest))
            if info.modified_ms / 1000 > cutoff or (touched is not None and touched / 1000 > cutoff):
                return None
            failpoints.hit("gc.before-delete")
            if not self.guard.still_held(lease) or not self.driver.delete(keys.blob(digest)):
                return None
        return info.size

    def _held(self, digest: Digest) -> ContextManager[Held | None]:
        return self.guard.hold(str(digest)) if self.guard is not None else contextlib.nullcontext()
