"""Storage: blobs, upload sessions and per-repository records, on a filesystem or an object store.

Knows nothing of Flask or Redis. The layout is documented in layout.py; the
object stores (storage/object/) keep the same records at the same relative
paths through the driver seam (storage/driver/).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from registry_ext.storage.blobs import BlobStore
from registry_ext.storage.journal import Intent, Journal
from registry_ext.storage.layout import Layout
from registry_ext.storage.repos import HistoryEvent, ManifestRecord, RepoStore, TagRecord
from registry_ext.storage.uploads import (LengthMismatch, OffsetMismatch, SessionCounts, UploadGone, UploadInfo,
                                          UploadStore)


@dataclasses.dataclass(frozen=True)
class Storage:
    layout: Layout
    blobs: BlobStore
    uploads: UploadStore
    repos: RepoStore
    journal: Journal
    #: The object store's driver (storage.driver = "s3"); None on a filesystem root. ``layout`` then
    #: names only local scratch space (tmp/, fills/) under storage.root.
    driver: Any = None

    @property
    def on_objects(self) -> bool:
        return self.driver is not None

    def where(self) -> str:
        """How messages name the store: the root folder, or s3://bucket/prefix."""
        if self.driver is None:
            return str(self.layout.root)
        from registry_ext.storage.object.root import describe

        return describe(self.driver)


def open_storage(root: str, upload_ttl_seconds: int, upload_idle_seconds: int | None = None) -> Storage:
    """The filesystem store rooted at ``root``. Nothing is created: services/root.py accepts (or
    creates) the root before anything is written. Sessions that never received a byte expire after
    ``upload_idle_seconds`` (None: after ``upload_ttl_seconds`` like the others)."""
    layout = Layout(root)
    blobs = BlobStore(layout)
    return Storage(layout, blobs, UploadStore(layout, upload_ttl_seconds, upload_idle_seconds, blobs),
                   RepoStore(layout), Journal(layout))


def open_object_storage(driver: Any, scratch: str, locks: Any, upload_ttl_seconds: int,
                        upload_idle_seconds: int | None = None, guard: Any = None) -> Storage:
    """The object stores on ``driver`` (storage/object/), with local scratch space under ``scratch``,
    cross-host ``locks`` and gc's per-blob ``guard`` (storage/locks.py; without one, gc is refused)."""
    from registry_ext.storage.object.blobs import ObjectBlobStore
    from registry_ext.storage.object.journal import ObjectJournal
    from registry_ext.storage.object.repos import ObjectRepoStore
    from registry_ext.storage.object.uploads import ObjectUploadStore

    layout = Layout(scratch)
    blobs = ObjectBlobStore(driver, guard)
    uploads = ObjectUploadStore(driver, locks, blobs, upload_ttl_seconds, upload_idle_seconds)
    return Storage(layout, blobs, uploads, ObjectRepoStore(driver, locks, guard),  # type: ignore[arg-type]
                   ObjectJournal(driver), driver=driver)


__all__ = ["Storage", "open_storage", "open_object_storage", "Intent", "Journal", "HistoryEvent", "ManifestRecord",
           "TagRecord",
           "UploadInfo", "SessionCounts", "OffsetMismatch", "LengthMismatch", "UploadGone"]
