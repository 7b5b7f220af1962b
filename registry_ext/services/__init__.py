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
from registry_ext.services.root import claim_root, storage_identity
from registry_ext.services.tag_listing import TagListing
from registry_ext.services.storage_setup import open_configured_storage
from registry_ext.storage import Storage
from registry_ext.tag_rules import parse_immutable


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


def build_registry(settings: Settings, *, create_root: bool = False) -> Registry:
    """Wire storage, index and services from validated settings.

    The storage root must be a registry's (services/root.py); only the
    server passes ``create_root`` and may start a new one.

    Raises:
        RootRefused: the storage root must not be used (one line saying why).
    """
    if not settings.redis.url:
        from registry_ext.config import ConfigError

        raise ConfigError("redis.url is empty: set it, or start with `registry-ext serve`, "
                          "which runs a private redis-server")
    limits = settings.limits
    index = open_index(settings.redis.url, settings.redis.key_prefix, limits.entry_fields_max_bytes,
                       settings.feed)
    storage = open_configured_storage(settings, index)
    claim_root(storage, index, create=create_root)
    blobs = BlobService(storage, index)
    upstreams = frozenset(settings.proxy.upstreams)  # their caches' listings show `mirror`
    return Registry(storage, index, blobs, UploadService(storage, blobs, limits),
                    ManifestService(storage, index, settings.storage.delete_enabled, limits.push_tags_max,
                                    parse_immutable(settings.immutable_tags.rules)),
                    ListingService(index, settings.limits), TagListing(index, settings.limits, upstreams),
                    ManifestListing(index, settings.limits, upstreams),
                    FeedService(index.feed, settings.feed, storage_identity(storage)))
