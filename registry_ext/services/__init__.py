"""Registry semantics between the HTTP views and storage + index."""
from __future__ import annotations

import dataclasses

from registry_ext.config import Settings
from registry_ext.index import Index, open_index
from registry_ext.services.blobs import BlobService, UploadService
from registry_ext.services.feed import FeedService
from registry_ext.services.listing import ListingService
from registry_ext.services.manifest_listing import ManifestListing
from registry_ext.services.manifests import ManifestService
from registry_ext.services.tag_listing import TagListing
from registry_ext.storage import Storage, open_storage
from registry_ext.storage.identity import load_identity


@dataclasses.dataclass(frozen=True)
class Registry:
    storage: Storage
    index: Index
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    listing: ListingService
    tag_listing: TagListing
    manifest_listing: ManifestListing
    feed: FeedService


def build_registry(settings: Settings) -> Registry:
    """Wire storage, index and services from validated settings."""
    if not settings.redis.url:
        from registry_ext.config import ConfigError

        raise ConfigError("redis.url is empty: set it, or start with `registry-ext serve`, "
                          "which runs a private redis-server")
    storage = open_storage(settings.storage.root, settings.limits.upload_ttl_seconds)
    index = open_index(settings.redis.url, settings.redis.key_prefix, settings.feed)
    blobs = BlobService(storage, index)
    return Registry(storage, index, blobs, UploadService(storage, blobs),
                    ManifestService(storage, index, settings.storage.delete_enabled),
                    ListingService(index, settings.limits), TagListing(index, settings.limits),
                    ManifestListing(index, settings.limits),
                    FeedService(index.feed, settings.feed, load_identity(storage.layout)))
