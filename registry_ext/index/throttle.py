"""Failed-login counters shared by every worker and host (registry_ext/auth/gate.py uses them).

Keys (``<p>`` is the prefix; ``<u>`` the first 32 hex digits of the
SHA-256 of the user name, so a key's length does not depend on what a
client sends)::

    <p>:auth:fail:addr:<address>   STRING  failed logins from an address in the window (EXPIRE: window)
    <p>:auth:fail:user:<u>         STRING  failed logins for a user, from anywhere (EXPIRE: window)
    <p>:auth:known:<u>             ZSET    addresses the user logged in from, score = ms; the last
                                           ``KNOWN_MAX``, kept ``KNOWN_SECONDS`` after the last login

Each key is touched alone (one-key scripts), so any Redis Cluster slot will
do. Every key expires: the counters after the window that their first
failure opened, the known addresses after ``KNOWN_SECONDS``.
"""
from __future__ import annotations

import dataclasses
import hashlib

import redis

from registry_ext.clock import now_ms

KNOWN_MAX = 32
KNOWN_SECONDS = 30 * 24 * 3600

_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclasses.dataclass(frozen=True)
class LoginState:
    address_failures: int
    address_ttl: int
    user_failures: int
    user_ttl: int
    known_address: bool


class LoginThrottle:
    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self._count = client.register_script(_COUNT)

    def _keys(self, address: str, user: str) -> tuple[str, str, str]:
        hashed = hashlib.sha256(user.encode()).hexdigest()[:32]
        return (f"{self.prefix}:auth:fail:addr:{address}", f"{self.prefix}:auth:fail:user:{hashed}",
                f"{self.prefix}:auth:known:{hashed}")

    def state(self, address: str, user: str) -> LoginState:
        """The counters for this address and user, in one round trip."""
        addr_key, user_key, known_key = self._keys(address, user)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(addr_key)
        pipe.ttl(addr_key)
        pipe.get(user_key)
        pipe.ttl(user_key)
        pipe.zscore(known_key, address)
        addr, addr_ttl, usr, usr_ttl, known = pipe.execute()
        return LoginState(int(addr or 0), max(addr_ttl, 1), int(usr or 0), max(usr_ttl, 1), known is not None)

    def failed(self, address: str, user: str, window: int) -> None:
        # Two calls, not a pipeline: a script in a Cluster pipeline is not loaded on its node
        # (NoScriptError); called alone, redis-py loads it where needed. Only failures pay this.
        for key in self._keys(address, user)[:2]:
            self._count(keys=[key], args=[window])

    def succeeded(self, address: str, user: str) -> None:
        """Remember the address as one this user logs in from."""
        _addr, _user, known_key = self._keys(address, user)
        pipe = self.client.pipeline(transaction=False)  # one key; a lost step is harmless
        pipe.zadd(known_key, {address: now_ms()})
        pipe.zremrangebyrank(known_key, 0, -KNOWN_MAX - 1)
        pipe.expire(known_key, KNOWN_SECONDS)
        pipe.execute()
