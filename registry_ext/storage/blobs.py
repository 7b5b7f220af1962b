"""Content-addressed blob store on a filesystem.

A blob path exists only once its bytes were verified against its digest:
uploads are assembled elsewhere and renamed in (see uploads.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from registry_ext.oci.digest import Digest
from registry_ext.storage.atomic import move_durably, write_atomic
from registry_ext.storage.layout import Layout


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

    def read(self, digest: Digest) -> bytes | None:
        handle = self.open(digest)
        if handle is None:
            return None
        with handle:
            return handle.read()

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store verified bytes (a manifest, the empty blob) unless already there."""
        path = self.layout.blob(digest)
        if not path.exists():
            write_atomic(path, data, self.layout.tmp)

    def adopt(self, digest: Digest, src: Path) -> None:
        """Move a verified upload file into place (content-addressed: same bytes win either way)."""
        move_durably(src, self.layout.blob(digest))

    def path(self, digest: Digest) -> Path:
        return self.layout.blob(digest)
