"""The intent journal on an object store: storage/journal.py's Journal through a driver.

An entry is the object ``journal/<uuid>.json``, written whole with one
``put_content`` before the write's first storage change and deleted
after its index update (see storage/journal.py for why). An entry is
named by its key, which ``open`` returns and ``close`` takes back.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from typing import Iterator

import orjson

from registry_ext.storage.driver.base import PathNotFound, StorageDriver
from registry_ext.storage.journal import Intent
from registry_ext.storage.object import keys


class ObjectJournal:
    def __init__(self, driver: StorageDriver):
        self.driver = driver

    @contextlib.contextmanager
    def pending(self, intent: Intent) -> Iterator[None]:
        """Record ``intent`` for the span of the block; keep it when the block raises."""
        key = self.open(intent)
        yield
        self.close(key)

    def open(self, intent: Intent) -> str:
        """Write the entry (whole or not at all, so a failure leaves nothing) and return its key."""
        key = keys.journal_entry(uuid.uuid4().hex)
        data = orjson.dumps({"repo": intent.repo, "tags": intent.tags, "manifests": intent.manifests,
                             "catalog": intent.catalog})
        self.driver.put_content(key, data, durable=False)
        return key

    def close(self, key: str) -> None:
        """The write finished: forget its entry (already gone when the reconciler took it)."""
        self.driver.delete(key)

    def exists(self, key: str) -> bool:
        """Whether the entry is still there (the reconciler checks once it holds the lock)."""
        return self.age_ms(key) is not None

    def age_ms(self, key: str) -> int | None:
        """Milliseconds since the entry was written; None when it is gone."""
        try:
            return max(0, int(time.time() * 1000) - self.driver.stat(key).modified_ms)
        except PathNotFound:
            return None

    def entries(self) -> Iterator[tuple[str, Intent | None]]:
        """Every entry left, oldest name first; None for one whose content is unreadable."""
        try:
            names = self.driver.list(keys.JOURNAL)
        except PathNotFound:
            return
        for name in names:
            key = f"{keys.JOURNAL}/{name}"
            try:
                raw = orjson.loads(self.driver.get_content(key))
                yield key, Intent(raw["repo"], tuple(raw["tags"]), tuple(raw["manifests"]), bool(raw["catalog"]))
            except PathNotFound:
                continue  # closed meanwhile
            except (orjson.JSONDecodeError, KeyError, TypeError):
                yield key, None
