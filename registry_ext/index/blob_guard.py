"""Garbage collection's guard on S3: a lease per blob, and when a writer last relied on the blob.

On a filesystem gc takes a blob by an atomic rename and then reads its
mtime, which every writer bumps before relying on the blob
(storage/quarantine.py). S3 has neither a rename nor a way to bump an
object's time, so the object stores (storage/object/blobs.py, repos.py)
order gc and writers with a lease per digest instead: a writer holds it
while it finds the blob and records the touch here; gc holds it while it
reads the touch and the object's time and deletes. One of the two goes
first, whole (docs/gc.md#on-s3).

Keys, in the digest's own slot (as the pull-through fill's)::

    <p>:blob:{<digest>}:lease     STRING token of the holder (index/leases.py: PX ttl, refreshed while held)
    <p>:blob:{<digest>}:touched   STRING ms a writer last relied on the blob (EX ``touch_ttl_s``)

A touch needs to outlive gc's grace period only: a run keeps what was
touched after ``start - grace``, so an older touch no longer matters.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import redis

from registry_ext.clock import now_ms
from registry_ext.index.keys import Keys
from registry_ext.index.leases import Lease, Leases

WEEK_S = 7 * 86_400


def touch_ttl(grace_period_seconds: int) -> int:
    """How long a touch is kept: twice gc's grace period, and at least a week (a ``gc --grace-period``
    longer than the configured one still sees the touches of the last week)."""
    return max(WEEK_S, 2 * grace_period_seconds)


class BlobGuard:
    def __init__(self, client: redis.Redis, prefix: str, ttl_ms: int = 30_000, touch_ttl_s: int = WEEK_S,
                 wait_s: float = 30.0):
        self.client = client
        self.keys = Keys(prefix)
        self.touch_ttl_s = touch_ttl_s
        self.leases = Leases(client, ttl_ms, wait_s)

    @contextlib.contextmanager
    def hold(self, digest: str) -> Iterator[Lease]:
        """Hold the blob's lease for the block (waiting up to ``wait_s``); raises LeaseBusy."""
        with self.leases.hold(self.keys.blob_lease(str(digest))) as lease:
            yield lease

    def touch(self, digest: str) -> None:
        """Record that a writer relies on the blob now (call it holding the lease)."""
        self.client.set(self.keys.blob_touched(str(digest)), now_ms(), ex=self.touch_ttl_s)

    def touched_at(self, digest: str) -> int | None:
        """When a writer last relied on the blob (ms), or None (never, or longer ago than the ttl)."""
        value = self.client.get(self.keys.blob_touched(str(digest)))
        return None if value is None else int(value)

    def still_held(self, lease: Lease) -> bool:
        return self.leases.still_held(lease)
