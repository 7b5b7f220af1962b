"""The Redis index: rebuildable from storage, shaped for the listings.

Knows nothing of Flask. Key schema in keys.py (and meta.py for the index's
own state).
"""
from __future__ import annotations

import dataclasses

import redis

from registry_ext.index.connection import connect
from registry_ext.config import FeedSettings
from registry_ext.index.feed import FeedStore
from registry_ext.index.keys import Keys
from registry_ext.index.meta import IndexMeta
from registry_ext.index.mirror_state import MirrorState
from registry_ext.index.pauses import ClientPauses
from registry_ext.index.pulls import PullStore
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
    pauses: ClientPauses
    feed: FeedStore
    pulls: PullStore
    mirror: MirrorState


def open_index(url: str, prefix: str, entry_max_bytes: int = 4096, feed: FeedSettings | None = None) -> Index:
    """An index over the Redis at ``url`` (one server, Sentinel or Cluster: index/connection.py); manifest
    entries keep at most ``entry_max_bytes`` of pusher-sized listing fields (``limits.entry_fields_max_bytes``)."""
    feed = feed or FeedSettings()
    client = connect(url)
    keys = Keys(prefix)
    reader = IndexReader(client, keys)
    store = FeedStore(client, keys, feed.enabled, feed.retention_events, feed.retention_days * 86_400_000,
                      feed.recent_per_repo)
    return Index(client, keys, reader, IndexWriter(client, keys, entry_max_bytes, events=feed.enabled),
                 TagScanner(client, keys), IndexMeta(client, keys.meta), IndexState(reader),
                 ClientPauses(client, keys), store, PullStore(client, keys),
                 MirrorState(client, keys))


__all__ = ["Index", "IndexState", "open_index"]
