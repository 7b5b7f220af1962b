"""Filesystem storage: blobs, upload sessions and per-repository records.

Knows nothing of Flask or Redis. The layout is documented in layout.py.
"""
from __future__ import annotations

import dataclasses

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


def open_storage(root: str, upload_ttl_seconds: int, upload_idle_seconds: int | None = None) -> Storage:
    """The filesystem store rooted at ``root``. Nothing is created: services/root.py accepts (or
    creates) the root before anything is written. Sessions that never received a byte expire after
    ``upload_idle_seconds`` (None: after ``upload_ttl_seconds`` like the others)."""
    layout = Layout(root)
    blobs = BlobStore(layout)
    return Storage(layout, blobs, UploadStore(layout, upload_ttl_seconds, upload_idle_seconds, blobs),
                   RepoStore(layout), Journal(layout))


__all__ = ["Storage", "open_storage", "Intent", "Journal", "HistoryEvent", "ManifestRecord", "TagRecord",
           "UploadInfo", "SessionCounts", "OffsetMismatch", "LengthMismatch", "UploadGone"]
