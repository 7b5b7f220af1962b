"""Bounded, shared work per process: at most N computations at once, identical ones run once.

The mirror-diff API compares with a remote that may be slow or never
answer; each comparison holds a request thread until its deadline. Without
a bound, 80 anonymous requests held every thread of every worker. A
:class:`FlightGate` (one per worker process) lets ``slots`` distinct keys
compute at once; a request for a key already being computed waits for that
result instead of starting another (single flight), at most ``waiters`` of
them at once; a result is then reused for ``cache_seconds``. Anything
beyond answers at once with :class:`Busy`, never queues: so the gate holds
at most ``slots + waiters`` threads of a worker, whatever the clients do.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Hashable


class Busy(Exception):
    """Every slot (or every waiting place) is taken, or the shared result failed: come back later."""

    def __init__(self, reason: str, retry_after: int):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclasses.dataclass
class _Flight:
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    value: bytes | None = None


class FlightGate:
    def __init__(self, slots: int, waiters: int):
        self.slots, self.waiters = slots, waiters
        self._lock = threading.Lock()
        self._running: dict[Hashable, _Flight] = {}
        self._waiting = 0
        self._cache: dict[Hashable, tuple[float, bytes]] = {}

    def get(self, key: Hashable, compute: Callable[[], bytes], *, cache_seconds: float,
            budget: float) -> bytes:
        """The cached value of ``key``, the value another thread is computing, or ``compute()``'s.

        ``budget`` is how long a computation may take (its deadline): a
        follower waits that long at most, and it is the Retry-After of a
        refusal. Raises Busy when no slot or waiting place is free, or when
        the computation a follower waited for failed or overran.
        """
        retry = max(1, round(budget))
        with self._lock:
            now = time.monotonic()
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
            flight = self._running.get(key)
            if flight is None:
                if len(self._running) >= self.slots:
                    raise Busy(f"{self.slots} comparisons already running in this worker", retry)
                flight = self._running[key] = _Flight()
                leader = True
            else:
                if self._waiting >= self.waiters:
                    raise Busy(f"{self.waiters} requests already waiting for running comparisons", retry)
                self._waiting += 1
                leader = False
        return self._lead(key, flight, compute, cache_seconds) if leader else self._follow(flight, budget, retry)

    def _lead(self, key: Hashable, flight: _Flight, compute: Callable[[], bytes], cache_seconds: float) -> bytes:
        try:
            flight.value = compute()
            return flight.value
        finally:
            with self._lock:
                del self._running[key]
                now = time.monotonic()
                for stale in [k for k, (expires, _v) in self._cache.items() if expires <= now]:
                    del self._cache[stale]
                if flight.value is not None and cache_seconds > 0:
                    self._cache[key] = (now + cache_seconds, flight.value)
            flight.done.set()

    def _follow(self, flight: _Flight, budget: float, retry: int) -> bytes:
        try:
            finished = flight.done.wait(budget + 1)
        finally:
            with self._lock:
                self._waiting -= 1
        if not finished or flight.value is None:
            raise Busy("the same comparison was running and did not finish", retry)
        return flight.value
