"""Long-polls waiting inside a worker: one tail of the feed per process, a few waiting threads.

Used when no waiter process takes long-polls off the workers (without
nginx, ``feed.wait_offload`` empty). One daemon thread per worker process
follows the feed stream (``XREAD BLOCK``) and wakes the waiting requests
whose filter an entry matches. At most ``feed.wait_threads`` requests of
a worker wait at once; the next one is answered at once, with a
``Retry-After``, so long-polls can never take all of a worker's threads.

A request waits for entries after the position its own scan reached. The
tail keeps the last entries it saw, so an entry that arrived between the
scan and the registration is found at registration; when the tail cannot
vouch for that gap (it started later, or its memory of recent entries
does not reach back), the request is woken at once and scans again.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
import weakref

import redis

from registry_ext.index.feed import FeedStore
from registry_ext.oci.repo_filter import RepoFilter

log = logging.getLogger(__name__)

RING = 4096       # entries the tail remembers
BLOCK_MS = 5000   # one XREAD BLOCK (below the client's 10 s socket timeout)
_HUBS: "weakref.WeakSet[WaitHub]" = weakref.WeakSet()


def close_all() -> None:
    """The worker is stopping: every waiting request answers now (gunicorn_setup.post_worker_init)."""
    for hub in list(_HUBS):
        hub.close()


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


class _Waiter:
    def __init__(self, flt: RepoFilter, after: tuple[int, int]):
        self.flt = flt
        self.after = after
        self.woken = threading.Event()


class WaitHub:
    def __init__(self, store: FeedStore, max_waiters: int):
        self.store = store
        self.max_waiters = max_waiters
        self._lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        self._ring: collections.deque[tuple[tuple[int, int], str]] = collections.deque(maxlen=RING)
        self._covered: tuple[int, int] | None = None  # every entry after this and up to _tail is in _ring
        self._tail = "0-0"
        self._thread: threading.Thread | None = None
        self._closing = False
        _HUBS.add(self)

    def close(self) -> None:
        """Answer every waiting request now, and every later one at once (graceful shutdown)."""
        with self._lock:
            self._closing = True
            for waiter in self._waiters:
                waiter.woken.set()

    def wait(self, flt: RepoFilter, after: str, timeout: float) -> str:
        """Block until an entry after ``after`` matches ``flt`` or ``timeout`` passes.

        Returns ``woken`` (scan again), ``timeout``, or ``busy`` (too many waiting: answer now).
        """
        key = id_key(after)
        with self._lock:
            if self._closing:
                return "timeout"
            if self._covered is None:
                self._reset()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="feed-tail", daemon=True)
                self._thread.start()
            if key < self._covered:
                return "woken"
            for entry_key, repo in reversed(self._ring):  # newest first: usually few are after `key`
                if entry_key <= key:
                    break
                if repo and flt.matches(repo):
                    return "woken"
            if len(self._waiters) >= self.max_waiters:
                return "busy"
            waiter = _Waiter(flt, key)
            self._waiters.append(waiter)
        try:
            woken = waiter.woken.wait(timeout)
            return "woken" if woken and not self._closing else "timeout"
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def _reset(self) -> None:
        """Start following from the stream's newest entry (the caller holds the lock)."""
        self._tail = self.store.newest_id()
        self._ring.clear()
        self._covered = id_key(self._tail)

    def _run(self) -> None:
        while True:
            try:
                with self._lock:
                    if self._covered is None:
                        self._reset()
                    tail = self._tail
                entries = self.store.tail(tail, BLOCK_MS, 1000)
            except redis.RedisError as exc:
                log.info("feed tail waits for Redis: %s", exc)
                self._restart()
                time.sleep(1)
                continue
            if entries:
                self._take(entries)

    def _take(self, entries) -> None:
        with self._lock:
            for entry in entries:
                key = id_key(entry.id)
                if len(self._ring) == self._ring.maxlen:
                    self._covered = self._ring[0][0]
                self._ring.append((key, entry.repo))
                for waiter in self._waiters:
                    if key > waiter.after and entry.repo and waiter.flt.matches(entry.repo):
                        waiter.woken.set()
            self._tail = entries[-1].id

    def _restart(self) -> None:
        """After a Redis error: forget what was seen (the stream may have changed) and wake everyone."""
        with self._lock:
            self._covered = None
            self._ring.clear()
            for waiter in self._waiters:
                waiter.woken.set()
