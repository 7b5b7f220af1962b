"""The Redis index: rebuildable from storage, shaped for the listings.

Knows nothing of Flask. Key schema in keys.py.
"""
from __future__ import annotations

import dataclasses

import redis

from registry_ext.index.keys import Keys
from registry_ext.index.reader import IndexReader
from registry_ext.index.scan import TagScanner
from registry_ext.index.writer import IndexWriter


@dataclasses.dataclass(frozen=True)
class Index:
    client: redis.Redis
    keys: Keys
    read: IndexReader
    write: IndexWriter
    scan: TagScanner


def open_index(url: str, prefix: str) -> Index:
    """An index over the Redis at ``url`` (connections open lazily, fork-safe pool)."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                  socket_connect_timeout=5, health_check_interval=30)
    keys = Keys(prefix)
    return Index(client, keys, IndexReader(client, keys), IndexWriter(client, keys), TagScanner(client, keys))


__all__ = ["Index", "open_index"]
