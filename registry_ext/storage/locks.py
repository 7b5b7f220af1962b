"""What the object stores need from a lock service: leases that work across hosts.

On a filesystem a repository lock is a ``flock``; several hosts on one bucket
need a lock all of them see, which is a lease in Redis (index/leases.py). The
object stores take any object with this shape, so storage never imports the
index: services wire ``index.store_locks`` and ``index.blob_guard`` in
(services/storage_setup.py).
"""
from __future__ import annotations

from typing import ContextManager, Protocol


class Held(Protocol):
    key: str
    token: str


class Locks(Protocol):
    def hold(self, key: str) -> ContextManager[Held]:
        """Hold ``key`` for the block, waiting a bounded time; raises index.leases.LeaseBusy."""

    def try_hold(self, key: str) -> ContextManager[Held | None]:
        """Hold ``key`` if it is free right now, else yield None."""

    def still_held(self, lease: Held) -> bool:
        """Whether ``lease`` was not lost (expired, taken over) since it was taken."""


class Guard(Protocol):
    """Garbage collection's guard on object storage (index/blob_guard.py, docs/gc.md#on-s3): a lease per
    blob digest that writers hold while they find and touch a blob and gc holds while it decides and
    deletes, and the time a writer last relied on the blob (S3 cannot bump an object's time)."""

    def hold(self, digest: str) -> ContextManager[Held]:
        """Hold the blob's lease for the block, waiting a bounded time; raises index.leases.LeaseBusy."""

    def touch(self, digest: str) -> None:
        """Record that a writer relies on the blob now (holding its lease)."""

    def touched_at(self, digest: str) -> int | None:
        """When a writer last relied on the blob (epoch ms), or None."""

    def still_held(self, lease: Held) -> bool:
        """Whether ``lease`` was not lost (gc checks it right before it deletes)."""
