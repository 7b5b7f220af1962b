"""The object stores' locks (storage/locks.py) as Redis leases (index/leases.py).

Stores name what they lock logically, ``repo:<name>`` or ``upload:<id>``; this
maps the name to its lease key in the repository's (or upload's) hash slot
(index/keys.py), so the stores need not know the key prefix or the cluster
layout.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import redis

from registry_ext.index.leases import Lease, Leases

KINDS = ("repo", "upload")


class StoreLocks:
    def __init__(self, client: redis.Redis, prefix: str, ttl_ms: int = 30_000, wait_s: float = 30.0):
        self.prefix = prefix
        self.leases = Leases(client, ttl_ms, wait_s)

    def key(self, name: str) -> str:
        """``repo:a/b`` -> ``<p>:repo:{a/b}:lease``."""
        kind, sep, rest = name.partition(":")
        if kind not in KINDS or not sep or not rest:
            raise ValueError(f"unknown lock name {name[:80]!r}")
        return f"{self.prefix}:{kind}:{{{rest}}}:lease"

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[Lease]:
        with self.leases.hold(self.key(name)) as lease:
            yield lease

    @contextlib.contextmanager
    def try_hold(self, name: str) -> Iterator[Lease | None]:
        with self.leases.try_hold(self.key(name)) as lease:
            yield lease

    def still_held(self, lease: Lease) -> bool:
        return self.leases.still_held(lease)
