"""The Redis index: rebuildable from storage, shaped for the listings.

Knows nothing of Flask. Key schema in keys.py (and meta.py for the index's
own state).
"""
from __future__ import annotations

import dataclasses

import redis

from registry_ext.config import FeedSettings
from registry_ext.index.feed import FeedStore
from registry_ext.index.keys import Keys
from registry_ext.index.meta import IndexMeta
from registry_ext.index.reader import IndexReader, index_incomplete
from registry_ext.index.scan import TagScanner
from registry_ext.index.writer import IndexWriter


class IndexState:
    """This process's view of whether the index is complete (set by services/maintenance.py).

    Starts usable: only a worker's maintenance thread, having found the
    marker missing, marks it as rebuilding. While it is, each refused
    request asks Redis again, so a rebuild finished by another worker is
    seen at once rather than at this worker's next tick.
    """

    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader
        self.rebuilding = False

    def require_complete(self) -> None:
        """Raises: RegistryError(UNSUPPORTED, 503) while the index is being rebuilt."""
        if self.rebuilding:
            if not self.reader.index_complete():
                raise index_incomplete()
            self.rebuilding = False


@dataclasses.dataclass(frozen=True)
class Index:
    client: redis.Redis
    keys: Keys
    read: IndexReader
    write: IndexWriter
    scan: TagScanner
    meta: IndexMeta
    state: IndexState
    feed: FeedStore


def open_index(url: str, prefix: str, feed: FeedSettings | None = None) -> Index:
    """An index over the Redis at ``url`` (connections open lazily, fork-safe pool)."""
    feed = feed or FeedSettings()
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                  socket_connect_timeout=5, health_check_interval=30)
    keys = Keys(prefix)
    reader = IndexReader(client, keys)
    store = FeedStore(client, keys, feed.enabled, feed.retention_events, feed.retention_days * 86_400_000,
                      feed.recent_per_repo)
    return Index(client, keys, reader, IndexWriter(client, keys, events=feed.enabled), TagScanner(client, keys),
                 IndexMeta(client, keys.meta), IndexState(reader), store)


__all__ = ["Index", "IndexState", "open_index"]
