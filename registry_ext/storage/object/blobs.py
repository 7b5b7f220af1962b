"""Content-addressed blobs on an object store: storage/blobs.py's BlobStore through a driver.

A blob key exists only once its bytes were verified against the digest,
as on a filesystem: ``put_bytes`` writes verified bytes, ``put_file``
uploads a verified local file (a pull-through fill), and either is
visible whole or not at all. Clients may fetch a blob from the store
directly (``redirect_url``) when the driver offers presigned URLs.

Garbage collection's primitive (take a blob unless touched meanwhile,
storage/quarantine.py) needs a rename and mtimes a writer can bump; S3
has neither, so ``take``, ``recover_taken`` and ``taken_pending`` raise
NotSupportedOnObjectStorage for now, and ``touch`` only says whether the
blob is there.
"""
from __future__ import annotations

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
        raise NotSupportedOnObjectStorage("garbage collection (recover_taken)")

    def taken_pending(self) -> bool:
        raise NotSupportedOnObjectStorage("garbage collection (taken_pending)")

    def take(self, digest: Digest, cutoff: float) -> int | None:
        raise NotSupportedOnObjectStorage("garbage collection (take)")
