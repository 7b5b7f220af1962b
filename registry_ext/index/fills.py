"""The blob fill's shared state in Redis: one lease per digest, and the progress of the fill holding it.

A pull-through fill (proxy/blobfill.py) fetches a blob from an upstream once across every worker and
host: the one that sets the lease (``SET NX PX`` in a script that also resets the progress hash) fetches;
the others follow its progress and read the leader's temp file up to ``written``. The lease is refreshed
with every progress update and by a thread while held (an upstream may stall between chunks), and
expires ``ttl`` after the last refresh when its holder dies: a follower then takes it over. Every write
checks the owner first (Lua), so a leader whose lease expired never overwrites its successor's state.

Keys (one slot per digest, ``{<digest>}``)::

    <p>:fill:{<digest>}:lease   STRING token of the fill holding it (PX lease_ttl)
    <p>:fill:{<digest>}:state   HASH   token, status (opening|filling|done|failed), size ('' unknown),
                                       written, error (class name), reason; PX lease_ttl * 4, 60 s once ended
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Mapping

import redis

from registry_ext.index.keys import Keys

ENDED_TTL_MS = 60_000  # how long an ended fill's state stays readable for its followers

_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', ARGV[1], 'status', 'opening', 'written', '0', 'size', '')
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""
_UPDATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""
_END = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
_LOOK = """
return {redis.call('GET', KEYS[1]) or '', redis.call('HGETALL', KEYS[2])}
"""


@dataclasses.dataclass(frozen=True)
class FillState:
    """One fill as Redis knows it; ``holder`` is the lease's token now ('' when nobody holds it)."""

    holder: str
    token: str
    status: str
    size: int | None
    written: int
    error: str
    reason: str

    @property
    def leader_gone(self) -> bool:
        """The fill was not ended but its lease expired or moved on (the leader died)."""
        return self.status in ("opening", "filling") and self.holder != self.token


class FillIndex:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_ms: int = 10_000):
        self.client = client
        self.keys = keys
        self.ttl_ms = ttl_ms
        self._take = client.register_script(_TAKE)
        self._update = client.register_script(_UPDATE)
        self._end = client.register_script(_END)
        self._look = client.register_script(_LOOK)
        self._held: dict[tuple[str, str], None] = {}
        self._guard = threading.Lock()
        self._refresher: threading.Thread | None = None

    def _keys(self, digest: str) -> list[str]:
        return [self.keys.fill_lease(digest), self.keys.fill_state(digest)]

    def take(self, digest: str, token: str) -> bool:
        """Lead the fill of ``digest`` under ``token`` if nobody does (state reset to ``opening``)."""
        if not self._take(keys=self._keys(digest), args=[token, self.ttl_ms, self.ttl_ms * 4]):
            return False
        with self._guard:
            self._held[(digest, token)] = None
            if self._refresher is None or not self._refresher.is_alive():
                self._refresher = threading.Thread(target=self._refresh_loop, name="fill-lease", daemon=True)
                self._refresher.start()
        return True

    def update(self, digest: str, token: str, fields: Mapping[str, object]) -> bool:
        """Refresh the lease and set state fields; False when the lease is no longer ours."""
        args: list[object] = [token, self.ttl_ms, self.ttl_ms * 4]
        for name, value in fields.items():
            args += [name, "" if value is None else str(value)]
        return bool(self._update(keys=self._keys(digest), args=args))

    def end(self, digest: str, token: str, fields: Mapping[str, object]) -> bool:
        """Set the final state fields and release the lease, if still ours."""
        with self._guard:
            self._held.pop((digest, token), None)
        args: list[object] = [token, ENDED_TTL_MS]
        for name, value in fields.items():
            args += [name, "" if value is None else str(value)]
        return bool(self._end(keys=self._keys(digest), args=args))

    def forget(self, digest: str, token: str) -> None:
        """Stop refreshing a lease (it was lost); it expires by itself."""
        with self._guard:
            self._held.pop((digest, token), None)

    def look(self, digest: str) -> FillState | None:
        """The fill's state, or None when there is none (never filled, or ended long ago)."""
        holder, flat = self._look(keys=self._keys(digest))
        fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
        if not fields.get("token"):
            return None
        size = fields.get("size", "")
        return FillState(_text(holder), fields["token"], fields.get("status", ""),
                         int(size) if size else None, int(fields.get("written") or 0),
                         fields.get("error", ""), fields.get("reason", ""))

    def holds(self, digest: str, token: str) -> bool:
        """Whether ``token`` holds the fill lease of ``digest`` now (the temp-file sweep asks)."""
        return _text(self.client.get(self.keys.fill_lease(digest)) or b"") == token

    def _refresh_loop(self) -> None:
        while True:
            threading.Event().wait(self.ttl_ms / 3000)
            with self._guard:
                held = list(self._held)
                if not held:
                    self._refresher = None
                    return
            for digest, token in held:
                try:
                    self.update(digest, token, {})
                except redis.RedisError:
                    pass  # next round; a lease lost meanwhile makes the writer's next update fail


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
