"""Content-addressed blob store on a filesystem.

A blob path exists only once its bytes were verified against its digest:
uploads are assembled elsewhere and renamed in (see uploads.py). A blob's
mtime is when a writer last relied on it (``put_bytes``, ``adopt``,
``touch``): garbage collection deletes only blobs older than its cutoff
(storage/quarantine.py, docs/gc.md).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import BinaryIO, Iterator

from registry_ext.oci.digest import ALGORITHMS, Digest
from registry_ext.storage import quarantine
from registry_ext.storage.atomic import move_durably, write_atomic
from registry_ext.storage.layout import Layout


@dataclasses.dataclass(frozen=True)
class StoredBlob:
    digest: Digest
    size: int
    mtime: float  # epoch seconds: when a writer last relied on it


class BlobStore:
    def __init__(self, layout: Layout):
        self.layout = layout

    def size(self, digest: Digest) -> int | None:
        """Size of the blob, or None when it is not stored."""
        try:
            return os.stat(self.layout.blob(digest)).st_size
        except FileNotFoundError:
            return None

    def open(self, digest: Digest) -> BinaryIO | None:
        """An open binary file of the blob, or None when it is not stored."""
        try:
            return open(self.layout.blob(digest), "rb")
        except FileNotFoundError:
            return None

    def open_range(self, digest: Digest, start: int, length: int) -> BinaryIO | None:
        """The blob's file positioned at ``start`` (the caller reads ``length`` bytes), or None."""
        handle = self.open(digest)
        if handle is not None:
            handle.seek(start)
        return handle

    def redirect_url(self, digest: Digest) -> str | None:
        """Where a client could fetch the blob itself: nowhere (nginx's X-Accel-Redirect is the server's)."""
        return None

    def read(self, digest: Digest) -> bytes | None:
        handle = self.open(digest)
        if handle is None:
            return None
        with handle:
            return handle.read()

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store verified bytes (a manifest, the empty blob) unless already there (then touch them)."""
        path = self.layout.blob(digest)
        if not quarantine.touch(path):
            write_atomic(path, data, self.layout.tmp)

    def adopt(self, digest: Digest, src: Path) -> None:
        """Move a verified upload file into place (content-addressed: same bytes win either way),
        dated now (its last chunk may be older than gc's cutoff)."""
        os.utime(src)
        move_durably(src, self.layout.blob(digest))

    def touch(self, digest: Digest) -> bool:
        """Mark the blob as relied on now (a mount); False when it is not stored (gc may have taken it)."""
        return quarantine.touch(self.layout.blob(digest))

    def stored(self) -> Iterator[StoredBlob]:
        """Every blob with its size and mtime, folder by folder (gc's listing; one stat per blob)."""
        for algorithm in ALGORITHMS:
            top = self.layout.blobs / algorithm
            try:
                prefixes = sorted(os.listdir(top))
            except FileNotFoundError:
                continue
            for prefix in prefixes:
                try:
                    entries = list(os.scandir(top / prefix))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                for entry in entries:
                    if len(entry.name) != ALGORITHMS[algorithm]:
                        continue  # not a blob (a stray file): never gc's to judge
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    yield StoredBlob(Digest(algorithm, entry.name), st.st_size, st.st_mtime)

    def recover_taken(self) -> int:
        """Put back every blob and blob link a killed gc run left under ``gc/``; the count."""
        return quarantine.recover(self.layout)

    def taken_pending(self) -> bool:
        """Whether a killed gc run left files under ``gc/``."""
        return quarantine.pending(self.layout)

    def take(self, digest: Digest, cutoff: float) -> int | None:
        """Delete the blob unless touched after ``cutoff``; its size when deleted (storage/quarantine.py)."""
        return quarantine.take(self.layout, self.layout.blob(digest), cutoff)
