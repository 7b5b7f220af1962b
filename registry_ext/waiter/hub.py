"""The waiter's memory of the feed: one tail, recent entries, and who waits for what.

One task follows the stream (``XREAD BLOCK``, index/feed_tail.py) and keeps
the last ``RING`` entries, with their event JSON. A waiting request is
woken when an entry after its position passes its filter: waiters that
name repositories are found through a dictionary by name, so an entry
costs one lookup plus one check per waiter that uses a prefix or glob,
whatever the number of waiters.

The ring vouches for every entry after ``covered`` (the newest entry when
the tail started, or the last one it forgot). A request positioned before
that, a stream rebuilt under a new epoch (its first entry has ``n`` 0),
or a Redis error make the hub answer "ask the worker again" rather than
guess: the worker re-reads the stream and checks the cursor.
"""
from __future__ import annotations

import asyncio
import collections
import logging

import redis

from registry_ext.index.feed import Entry
from registry_ext.index.feed_tail import AsyncFeedTail
from registry_ext.oci.repo_filter import RepoFilter
from registry_ext.services.feed_wait import id_key

log = logging.getLogger(__name__)

RING = 10_000
BLOCK_MS = 5000


class Waiter:
    def __init__(self, flt: RepoFilter, after: tuple[int, int]):
        self.flt = flt
        self.after = after
        self.woken = asyncio.Event()
        self.lost = False     # the hub cannot vouch any more: the worker must look again
        self.closing = False  # the waiter is stopping: answer as if the wait had run out


class Hub:
    def __init__(self, tail: AsyncFeedTail):
        self.tail = tail
        self.ring: collections.deque[tuple[tuple[int, int], Entry]] = collections.deque(maxlen=RING)
        self.covered: tuple[int, int] | None = None
        self.epoch: str | None = None
        self.position = "0-0"
        self.by_name: dict[str, set[Waiter]] = collections.defaultdict(set)
        self.by_pattern: set[Waiter] = set()
        self.ready = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self.by_pattern) + sum(len(w) for w in self.by_name.values())

    async def run(self) -> None:
        """Follow the stream forever (reconnecting after Redis errors)."""
        while True:
            try:
                if self.covered is None:
                    await self._reset()
                entries = await self.tail.read(self.position, BLOCK_MS, 1000)
            except (redis.RedisError, OSError) as exc:
                log.warning("feed tail waits for Redis: %s", exc)
                self._lose_all()
                await asyncio.sleep(1)
                continue
            self.take(entries)

    async def _reset(self) -> None:
        self.epoch = await self.tail.epoch()
        self.position = await self.tail.newest_id()
        self.ring.clear()
        self.covered = id_key(self.position)
        self.ready.set()

    def take(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.n == 0 and not entry.repo:  # a new epoch began: nothing before it holds
                self._lose_all()
                return
            key = id_key(entry.id)
            if len(self.ring) == self.ring.maxlen:
                self.covered = self.ring[0][0]
            self.ring.append((key, entry))
            if entry.repo:
                self._wake(key, entry.repo)
            self.position = entry.id

    def _wake(self, key: tuple[int, int], repo: str) -> None:
        for waiter in self.by_name.get(repo, ()):
            if key > waiter.after:
                waiter.woken.set()
        for waiter in self.by_pattern:
            if key > waiter.after and waiter.flt.matches(repo):
                waiter.woken.set()

    def _lose_all(self) -> None:
        """Forget everything (the stream changed under us) and send every waiter back to a worker."""
        self.covered, self.epoch = None, None
        self.ring.clear()
        self.ready.clear()
        for waiter in list(self.by_pattern) + [w for ws in self.by_name.values() for w in ws]:
            waiter.lost = True
            waiter.woken.set()

    def close_all(self) -> None:
        """The process is stopping: every waiting poll answers its empty page now."""
        for waiter in list(self.by_pattern) + [w for ws in self.by_name.values() for w in ws]:
            waiter.closing = True
            waiter.woken.set()

    def vouches(self, epoch: str, after: tuple[int, int]) -> bool:
        return self.covered is not None and self.epoch == epoch and after >= self.covered

    def after(self, after: tuple[int, int]) -> list[Entry]:
        """The ring's entries after ``after``, oldest first (read from the newest end: usually few)."""
        found = []
        for key, entry in reversed(self.ring):
            if key <= after:
                break
            found.append(entry)
        found.reverse()
        return found

    def matches_after(self, flt: RepoFilter, after: tuple[int, int]) -> bool:
        return any(entry.repo and flt.matches(entry.repo) for entry in self.after(after))

    def add(self, waiter: Waiter) -> None:
        if waiter.flt.names is not None and waiter.flt.prefix is None and waiter.flt.glob is None:
            for name in waiter.flt.names:
                self.by_name[name].add(waiter)
        else:
            self.by_pattern.add(waiter)

    def remove(self, waiter: Waiter) -> None:
        self.by_pattern.discard(waiter)
        for name in waiter.flt.names or ():
            bucket = self.by_name.get(name)
            if bucket is not None:
                bucket.discard(waiter)
                if not bucket:
                    del self.by_name[name]

    def page(self, flt: RepoFilter, after: tuple[int, int], n: int) -> tuple[list[str], Entry | None, bool]:
        """Events after ``after`` passing ``flt`` from the ring: (events, last entry examined, more)."""
        events: list[str] = []
        last = None
        entries = self.after(after)
        for i, entry in enumerate(entries):
            last = entry
            if entry.repo and flt.matches(entry.repo):
                events.append(entry.data)
                if len(events) == n:
                    return events, last, i + 1 < len(entries)
        return events, last, False
