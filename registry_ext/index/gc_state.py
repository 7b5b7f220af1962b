"""Garbage collection's state in Redis: the lease that lets one run at a time, and its counters.

Several workers and hosts may schedule gc (services/gc_schedule.py), and an
operator may start ``registry-ext gc`` meanwhile: the run holds the
``{gc}:lock`` lease (index/leases.py; it expires ``lock_ttl`` after a killed
run's last refresh). Totals and the last run's figures live in one hash,
so /metrics of every worker reports runs made by any process
(registry_ext/metrics.py). Keys in index/keys.py.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import redis

from registry_ext.index.keys import Keys
from registry_ext.index.leases import Lease, LeaseBusy, Leases

TOTALS = ("runs", "bytes_freed", "blobs_deleted", "links_removed")


class GcState:
    def __init__(self, client: redis.Redis, keys: Keys, lock_ttl_ms: int = 30_000):
        self.client = client
        self.lock_key = keys.gc_lock
        self.stats_key = keys.gc_stats
        self.lock_ttl_ms = lock_ttl_ms

    @contextlib.contextmanager
    def hold(self, wait_s: float) -> Iterator[Lease | None]:
        """The gc lease for the block, waiting up to ``wait_s`` (0: not at all); None when another run has it."""
        leases = Leases(self.client, self.lock_ttl_ms, wait_s)
        if wait_s <= 0:
            with leases.try_hold(self.lock_key) as lease:
                yield lease
            return
        try:
            with leases.hold(self.lock_key) as lease:
                yield lease
        except LeaseBusy:
            yield None

    def still_held(self, lease: Lease) -> bool:
        return self.client.get(lease.key) == lease.token

    def running(self) -> bool:
        return bool(self.client.exists(self.lock_key))

    def record(self, finished_ms: int, duration_ms: int, bytes_freed: int, blobs_deleted: int,
               links_removed: int) -> None:
        """Add one finished run to the totals and remember its figures (one transaction, one slot)."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.stats_key, "runs", 1)
            pipe.hincrby(self.stats_key, "bytes_freed", bytes_freed)
            pipe.hincrby(self.stats_key, "blobs_deleted", blobs_deleted)
            pipe.hincrby(self.stats_key, "links_removed", links_removed)
            pipe.hset(self.stats_key, mapping={"last_finished_ms": finished_ms, "last_duration_ms": duration_ms,
                                               "last_bytes_freed": bytes_freed})
            pipe.execute()

    def stats(self) -> dict[str, int]:
        """Totals and last-run figures recorded so far (absent ones are 0)."""
        raw = self.client.hgetall(self.stats_key)
        fields = TOTALS + ("last_finished_ms", "last_duration_ms", "last_bytes_freed")
        return {field: int(raw.get(field, 0)) for field in fields}
