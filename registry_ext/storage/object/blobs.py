"""Content-addressed blobs on an object store: storage/blobs.py's BlobStore through a driver.

A blob key exists only once its bytes were verified against the digest,
as on a filesystem: ``put_bytes`` writes verified bytes, ``put_file``
uploads a verified local file (a pull-through fill), and either is
visible whole or not at all. Clients may fetch a blob from the store
directly (``redirect_url``) when the driver offers presigned URLs.

Garbage collection's primitive (take a blob unless touched meanwhile,
storage/quarantine.py) needs a rename and mtimes a writer can bump; S3
has neither, so gc is refused on object storage (config and the ``gc``
command) and ``take`` raises NotSupportedOnObjectStorage; nothing is ever
taken, so there is never anything to put back (``taken_pending`` is
False, ``recover_taken`` 0), and ``touch`` only says whether the blob is
there.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Iterator

from registry_ext.oci.digest import ALGORITHMS, Digest
from registry_ext.storage.blobs import StoredBlob
from registry_ext.storage.driver.base import PathNotFound, StorageDriver
from registry_ext.storage.object import NotSupportedOnObjectStorage, keys

CHUNK = 1 << 20  # bytes read from a local file per write


class ObjectBlobStore:
    def __init__(self, driver: StorageDriver):
        self.driver = driver

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
        """Store verified bytes (a manifest, the empty blob) unless already there."""
        self.driver.put_if_absent(keys.blob(digest), data)

    def put_file(self, digest: Digest, path: str | Path) -> None:
        """Upload a verified local file (a pull-through fill) unless the blob is already there.

        Streamed ``CHUNK`` bytes at a time; visible only at commit, dropped on any failure.
        """
        if self.size(digest) is not None:
            return  # content-addressed: the same bytes
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
        """Whether the blob is stored (an object's time cannot be bumped; gc is refused here)."""
        return self.size(digest) is not None

    def stored(self) -> Iterator[StoredBlob]:
        """Every blob with its size and time, in key order (one listing of ``blobs/``)."""
        for info in self.driver.walk(keys.BLOBS):
            parts = info.path.split("/")  # blobs/<alg>/<hex[:2]>/<hex>
            if len(parts) != 4 or len(parts[3]) != ALGORITHMS.get(parts[1], -1):
                continue  # not a blob (a stray object): never gc's to judge
            yield StoredBlob(Digest(parts[1], parts[3]), info.size, info.modified_ms / 1000)

    def recover_taken(self) -> int:
        """Nothing to put back: gc never takes anything on object storage."""
        return 0

    def taken_pending(self) -> bool:
        """False: gc never takes anything on object storage (housekeeping asks every tick)."""
        return False

    def take(self, digest: Digest, cutoff: float) -> int | None:
        raise NotSupportedOnObjectStorage("garbage collection (take)")
