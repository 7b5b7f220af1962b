"""When the pull-through mirror last confirmed each cached tag with its upstream (its freshness).

One hash per local repository (keys.py ``mirror:checked``): tag -> ms of the last confirmation. A
tag younger than its upstream's ``manifest_ttl`` is served without asking the upstream. Losing the
hash (a flush, a reindex) only makes the next pull ask again, so a Redis failure reads as "never
checked" and a failed write is logged, never a pull's error.

Also the scheduled sync's bookkeeping per upstream (proxy/sync.py): when the last one finished, and
the lease that lets one worker on one host run it.
"""
from __future__ import annotations

import logging

import redis

from registry_ext.index.keys import Keys
from registry_ext.index.leases import Leases

log = logging.getLogger(__name__)


class MirrorState:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def checked(self, name: str, tag: str) -> int | None:
        """Ms of the last confirmation of ``tag`` in ``name`` (None: never, or Redis unavailable)."""
        try:
            value = self.client.hget(self.keys.repo(name).mirror_checked, tag)
        except redis.RedisError as exc:
            log.warning("mirror freshness of %s:%s unreadable: %s", name, tag, exc)
            return None
        return int(value) if value is not None else None

    def stage_read(self, pipe, name: str, tags: list[str]) -> None:
        """Queue the confirmation times of ``tags`` on a caller's pipeline (one reply: ms or None
        per tag; an empty ``tags`` asks for a field no confirmation writes, as HMGET needs one)."""
        pipe.hmget(self.keys.repo(name).mirror_checked, tags or ["-"])

    def read(self, name: str, tags: list[str]) -> dict[str, int]:
        """tag -> ms of its last confirmation, for the tags confirmed at least once (one round trip)."""
        if not tags:
            return {}
        pipe = self.client.pipeline(transaction=False)
        self.stage_read(pipe, name, tags)
        (times,) = pipe.execute()
        return {tag: int(ms) for tag, ms in zip(tags, times) if ms is not None}

    def confirm(self, name: str, tag: str, at: int) -> None:
        """Record that the upstream confirmed ``tag`` at ``at`` (ms)."""
        try:
            self.client.hset(self.keys.repo(name).mirror_checked, tag, at)
        except redis.RedisError as exc:
            log.warning("mirror freshness of %s:%s not recorded: %s", name, tag, exc)

    def synced(self, upstream: str) -> int | None:
        """Ms the last sync of ``upstream`` finished (None: never). Raises: redis.RedisError."""
        value = self.client.get(self.keys.upstream_synced(upstream))
        return int(value) if value is not None else None

    def record_sync(self, upstream: str, at: int) -> None:
        """Raises: redis.RedisError."""
        self.client.set(self.keys.upstream_synced(upstream), at)

    def sync_lease(self, upstream: str, leases: Leases):
        """``leases.try_hold`` on the upstream's sync lease (a context manager: the Lease or None)."""
        return leases.try_hold(self.keys.upstream_sync(upstream))
