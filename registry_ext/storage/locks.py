"""What the object stores need from a lock service: leases that work across hosts.

On a filesystem a repository lock is a ``flock``; several hosts on one bucket
need a lock all of them see, which is a lease in Redis (index/leases.py). The
object stores take any object with this shape, so storage never imports the
index: services wire ``index.leases`` in (services/__init__.py).
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
