"""Leases in Redis: locks that work across processes and hosts, and expire when their holder dies.

Several registry hosts on one bucket cannot share a ``flock``. A lease is a
key set with ``SET NX PX`` to a token unique to one holding; it expires by
itself ``ttl`` after its last refresh, so a host killed while holding it
blocks the others for at most ``ttl``. A thread in each process refreshes
the leases it holds every ``ttl / 3``. Release compares the token first, so
a holder whose lease expired never deletes its successor's.

A lease alone cannot stop a holder that paused past its ``ttl`` (a stalled
VM) from writing late. Writes that must not land after the lease was lost
pass it to the index writer as a *fence*: the index transaction WATCHes the
lease key and aborts (``LeaseLost``) unless it still holds the token, so a
late writer's index update never lands; its journal entry stays and the
reconciler makes the index match storage again (services/reconcile.py).

Keys: ``<p>:repo:{<name>}:lease`` (the repository's hash slot, so the index
transaction may watch it) and ``<p>:upload:{<id>}:lease``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
import uuid
import weakref
from typing import Iterator

import redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LeaseBusy(Exception):
    """The lease stayed held by another holder for the whole wait."""


class LeaseLost(Exception):
    """A held lease expired or was taken over before the write that needed it finished."""


@dataclasses.dataclass(frozen=True)
class Lease:
    key: str
    token: str


class Leases:
    def __init__(self, client: redis.Redis, ttl_ms: int = 30_000, wait_s: float = 30.0):
        self.client = client
        self.ttl_ms = ttl_ms
        self.wait_s = wait_s
        self._release = client.register_script(_RELEASE)
        self._refresh = client.register_script(_REFRESH)
        self._held: dict[str, Lease] = {}
        self._local: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()
        self._refresher: threading.Thread | None = None

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[Lease]:
        """Hold the lease on ``key`` for the block (waiting up to ``wait_s``). Raises LeaseBusy."""
        local = self._local_lock(key)
        if not local.acquire(timeout=self.wait_s):
            raise LeaseBusy(key)
        try:
            lease = self._acquire(key, time.monotonic() + self.wait_s)
            try:
                yield lease
            finally:
                self._drop(lease)
        finally:
            local.release()

    @contextlib.contextmanager
    def try_hold(self, key: str) -> Iterator[Lease | None]:
        """The lease if it is free right now, else None (no waiting)."""
        local = self._local_lock(key)
        if not local.acquire(blocking=False):
            yield None
            return
        try:
            lease = Lease(key, uuid.uuid4().hex)
            if not self.client.set(key, lease.token, nx=True, px=self.ttl_ms):
                yield None
                return
            self._keep(lease)
            try:
                yield lease
            finally:
                self._drop(lease)
        finally:
            local.release()

    def is_free(self, key: str) -> bool:
        return not self.client.exists(key)

    def still_held(self, lease: Lease) -> bool:
        return self.client.get(lease.key) == lease.token

    # -- internals ------------------------------------------------------------
    def _local_lock(self, key: str) -> threading.Lock:
        """Threads of one process queue locally first, so they do not poll Redis against each other."""
        with self._guard:
            lock = self._local.get(key)
            if lock is None:
                lock = threading.Lock()
                self._local[key] = lock
            return lock

    def _acquire(self, key: str, deadline: float) -> Lease:
        lease = Lease(key, uuid.uuid4().hex)
        delay = 0.002
        while not self.client.set(key, lease.token, nx=True, px=self.ttl_ms):
            if time.monotonic() >= deadline:
                raise LeaseBusy(key)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)
        self._keep(lease)
        return lease

    def _keep(self, lease: Lease) -> None:
        with self._guard:
            self._held[lease.token] = lease
            if self._refresher is None or not self._refresher.is_alive():
                self._refresher = threading.Thread(target=self._refresh_loop, name="lease-refresh", daemon=True)
                self._refresher.start()

    def _drop(self, lease: Lease) -> None:
        with self._guard:
            self._held.pop(lease.token, None)
        try:
            self._release(keys=[lease.key], args=[lease.token])
        except redis.RedisError:
            pass  # it expires by itself

    def _refresh_loop(self) -> None:
        while True:
            time.sleep(self.ttl_ms / 3000)
            with self._guard:
                held = list(self._held.values())
                if not held:
                    self._refresher = None
                    return
            for lease in held:
                try:
                    self._refresh(keys=[lease.key], args=[lease.token, self.ttl_ms])
                except redis.RedisError:
                    pass  # next round; a lease lost meanwhile is caught by its fence
