"""The index's own state: is it complete, and was it built on the Redis that serves it now?

Keys (``<p>`` is the prefix; both share the ``{meta}`` hash tag, so the
scripts below touch one Cluster slot)::

    <p>:{meta}        HASH    run_id -> run_id of the Redis the index was last built or verified on,
                              built_at -> ms of that build or verification
    <p>:{meta}:lock   STRING  token of the worker rebuilding or verifying now (expires: PX)

No marker means the index is empty or was flushed: it must be rebuilt from
storage before listings can be trusted. A marker with another ``run_id``
means Redis restarted and may have lost its last writes (AOF ``everysec``,
RDB snapshots, a failover to a replica): the index is usable but must be
verified against storage. ``complete`` writes the marker only while its
lock is still held, so a flush during a rebuild is not mistaken for a
finished one.
"""
from __future__ import annotations

import dataclasses

import redis

from registry_ext.clock import now_ms
from registry_ext.index.connection import identity, is_cluster

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_COMPLETE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'run_id', ARGV[2], 'built_at', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""


@dataclasses.dataclass(frozen=True)
class Status:
    built_on: str | None  # run_id in the marker; None: no marker
    run_id: str           # the run_id of the Redis answering now


class IndexMeta:
    def __init__(self, client: redis.Redis, marker: str):
        self.client = client
        self.marker = marker
        self.lock = f"{marker}:lock"
        self._refresh = client.register_script(_REFRESH)
        self._complete = client.register_script(_COMPLETE)

    def status(self) -> Status:
        """The marker and the live run_id (one round trip on a single server)."""
        if is_cluster(self.client):
            return Status(self.client.hget(self.marker, "run_id"), identity(self.client))
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.marker, "run_id")
        pipe.info("server")
        built_on, info = pipe.execute()
        return Status(built_on, str(info["run_id"]))

    def mark(self, run_id: str) -> None:
        """Record that the index is complete for the Redis ``run_id`` (nothing to rebuild)."""
        self.client.hset(self.marker, mapping={"run_id": run_id, "built_at": now_ms()})

    def acquire(self, token: str, ttl_ms: int) -> bool:
        """Take the rebuild lock unless another worker holds it."""
        return bool(self.client.set(self.lock, token, nx=True, px=ttl_ms))

    def refresh(self, token: str, ttl_ms: int) -> bool:
        """Extend the lock; False when it was lost (expired, or the database was flushed)."""
        return bool(self._refresh(keys=[self.lock], args=[token, ttl_ms]))

    def complete(self, token: str, run_id: str) -> bool:
        """Write the marker and release the lock, only if the lock is still ours."""
        return bool(self._complete(keys=[self.marker, self.lock], args=[token, run_id, now_ms()]))

    def release(self, token: str) -> None:
        """Give the lock up after a failed attempt (if it is still ours)."""
        self._refresh(keys=[self.lock], args=[token, 1])
