"""Build the update feed from the tag history on storage, under a new epoch.

Needed when ``{feed}:meta`` has no epoch: a new or flushed Redis, or a
registry that ran before the feed existed. One worker (the ``{feed}:lock``
holder) builds while the others serve; feed reads answer 503 meanwhile,
and writes go on: their events wait in the repositories' outboxes,
because copying to the feed refuses while there is no epoch.

For each repository, under its lock: its history becomes events (each
tag's log walked in order; ``moved`` and ``previous`` follow from the
digest before); the events still waiting in its outbox are left out of
that list (they are the newest history entries, matched by tag, action
and digests, newest first) and stay waiting; the outbox is rewritten as
the last ``recent_per_repo`` history events followed by those waiting,
and the repository's head is set to the last history event. Then all
repositories' history events within the retention, oldest first, become
the new stream; it replaces the old one, with a new epoch and the webhook
consumer groups at its end, in one script (only if the lock is still
held). Finally every repository's waiting events are copied, after the
rebuilt ones: events of writes made during the build are not lost, and
webhooks deliver them.
"""
from __future__ import annotations

import collections
import heapq
import logging
import secrets
from typing import Callable

import orjson

from registry_ext.clock import now_ms
from registry_ext.index import Index
from registry_ext.index.feed import FeedStore
from registry_ext.oci.feed_events import tag_event, transition
from registry_ext.services.feed import FeedService
from registry_ext.storage import Storage

log = logging.getLogger(__name__)

LOCK_TTL_MS = 30_000


class LockLost(Exception):
    """The build lock expired or vanished (a flush): start again later."""


def repo_history(storage: Storage, index: Index, name: str) -> list[tuple[int, bytes]]:
    """Every tag change of a repository as (time, event JSON), oldest first."""
    changes = []
    for tag in storage.repos.history_tags(name):
        previous = None
        for seq, event in enumerate(storage.repos.history(name, tag)):
            new = None if event.event == "deleted" else event.digest
            action = transition(previous, new)
            if action is not None:
                changes.append((event.at, tag, seq, action, new, previous, event.media_type))
            previous = new
    changes.sort(key=lambda c: (c[0], c[1], c[2]))
    digests = [c[4] or c[5] for c in changes]
    entries = index.read.manifest_entries(name, digests)
    out = []
    for at, tag, _seq, action, new, previous, media_type in changes:
        described = entries.get(new or previous) or {}
        manifest = {"mediaType": media_type or described.get("mediaType", ""),
                    "artifactType": described.get("artifactType")}
        out.append((at, tag_event(name, tag, action, new, previous, manifest, at)))
    return out


def _key(data: str | bytes) -> tuple:
    doc = orjson.loads(data)
    return doc["tag"], doc["action"], doc["digest"], doc["previous"]


def without_pending(history: list[tuple[int, bytes]], pending: list[str]) -> list[tuple[int, bytes]]:
    """History events minus the ones still waiting in the outbox (matched newest first)."""
    waiting = collections.Counter(_key(data) for data in pending)
    kept = []
    for at, data in reversed(history):
        key = _key(data)
        if waiting[key] > 0:
            waiting[key] -= 1
            continue
        kept.append((at, data))
    kept.reverse()
    return kept


class FeedBuilder:
    def __init__(self, storage: Storage, index: Index, feed: FeedService, webhooks: tuple[str, ...] = ()):
        self.storage = storage
        self.index = index
        self.store: FeedStore = index.feed
        self.settings = feed.settings
        self.webhooks = sorted(webhooks)  # endpoint names: their consumer groups start at the new end
        self.token = secrets.token_hex(16)

    def needed(self) -> bool:
        return self.settings.enabled and self.store.epoch() is None

    def run(self) -> dict[str, int] | None:
        """Build if no epoch and no other worker builds; the counts, or None when not built here."""
        if not self.needed() or not self.store.acquire(self.token, LOCK_TTL_MS):
            return None
        try:
            if self.store.epoch() is not None:  # another worker finished since we looked
                return None
            counts = self.build(self._keep_lock)
        except LockLost:
            log.warning("feed build lock lost; starting again on the next tick")
            return None
        except BaseException:
            self.store.release(self.token)
            raise
        self.publish_all()
        return counts

    def _keep_lock(self) -> None:
        if not self.store.refresh(self.token, LOCK_TTL_MS):
            raise LockLost()

    def build(self, progress: Callable[[], None]) -> dict[str, int]:
        """Rebuild outboxes, heads and the stream (see the module docstring); raises LockLost."""
        feed = self.settings
        cutoff = now_ms() - feed.retention_days * 86_400_000 if feed.retention_days else None
        newest: list[tuple[int, int, int, str, bytes]] = []  # min-heap of the newest retention_events
        counts = {"repositories": 0, "events": 0, "waiting": 0}
        for order, name in enumerate(self.storage.repos.names()):
            progress()
            with self.storage.repos.lock(name):
                _head, waiting = self.store.pending(name, 1_000_000)
                pending = [data for _id, data in waiting]
                history = without_pending(repo_history(self.storage, self.index, name), pending)
                recent = [data for _at, data in history[-feed.recent_per_repo:]]
                self.store.set_heads({name: self.store.rewrite_repo(name, recent, pending)})
            counts["repositories"] += 1
            counts["waiting"] += len(pending)
            for i, (at, data) in enumerate(history):
                if cutoff is None or at >= cutoff:
                    item = (at, order, i, name, data)
                    if len(newest) < feed.retention_events:
                        heapq.heappush(newest, item)
                    elif item > newest[0]:
                        heapq.heapreplace(newest, item)
        progress()
        events = sorted(newest)
        self.store.build_begin()
        for start in range(0, len(events), 1000):
            self.store.build_add((start + i + 1, name, data)
                                 for i, (_at, _order, _i, name, data) in enumerate(events[start:start + 1000]))
        counts["events"] = len(events)
        groups = [self.store.fk.group(n) for n in self.webhooks]
        if not self.store.build_finish(self.token, secrets.token_hex(8), len(events), groups):
            raise LockLost()
        log.warning("update feed built from storage: %s", counts)
        return counts

    def publish_all(self) -> None:
        """Copy every repository's waiting events (under its lock: a write in progress publishes its own)."""
        for name in self.storage.repos.names():
            with self.storage.repos.lock(name):
                self.store.publish(name)
