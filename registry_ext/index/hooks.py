"""Webhook delivery state in Redis: who reads what, what is due when, what died (keys.py, ``{feed}``).

Per endpoint ``<e>``:

- the consumer group ``hook:<e>`` on the feed stream hands each new entry
  to one worker (``take``). The worker copies it, in one transaction, into
- ``hook:<e>:payload`` (id -> event JSON, so retries do not depend on the
  stream's retention), ``hook:<e>:due`` (ZSET, score = when the next
  attempt is due, ms) and ``hook:<e>:attempts`` (id -> failed attempts),
  and acknowledges it in the group. An entry read but never copied (the
  worker died in between) stays pending in the group and is taken again
  after ``RECLAIM_MS`` (``reclaim``).
- ``claim`` takes a due delivery for one attempt by pushing its due time
  past the attempt's lease: a worker that dies mid-attempt leaves it due
  again when the lease ends (at-least-once).
- ``done`` forgets it; ``failed`` schedules the next attempt or, after
  the last one, moves it to ``hook:<e>:dead`` (LIST, newest first,
  capped), with its last error.

Everything of one endpoint is in the ``{feed}`` slot, so each step is one
script or transaction.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import orjson
import redis

from registry_ext.clock import now_ms
from registry_ext.index.feed import Entry, entry_from
from registry_ext.index.keys import Keys

RECLAIM_MS = 30_000

_CLAIM = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return {redis.call('HGET', KEYS[2], ARGV[1]), redis.call('HGET', KEYS[3], ARGV[1]) or '0'}
"""
_FAILED = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local attempts = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if attempts >= tonumber(ARGV[3]) then
  local dead = cjson.encode({id = ARGV[1], attempts = attempts, error = ARGV[4], at = tonumber(ARGV[5]),
                             event = redis.call('HGET', KEYS[2], ARGV[1])})
  redis.call('LPUSH', KEYS[4], dead)
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 2
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


@dataclasses.dataclass(frozen=True)
class Due:
    id: str
    data: str
    attempts: int  # failed attempts so far


class HookStore:
    def __init__(self, client: redis.Redis, keys: Keys, endpoint: str):
        fk = keys.feed
        self.client = client
        self.stream = fk.stream
        self.group = fk.group(endpoint)
        self.payload, self.due = fk.hook(endpoint, "payload"), fk.hook(endpoint, "due")
        self.attempts, self.dead = fk.hook(endpoint, "attempts"), fk.hook(endpoint, "dead")
        self._claim = client.register_script(_CLAIM)
        self._failed = client.register_script(_FAILED)

    def ensure_group(self) -> bool:
        """Create the endpoint's group at the stream's end if missing; False while there is no stream."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="$")
        except redis.ResponseError as exc:
            text = str(exc)
            if "BUSYGROUP" in text:
                return True
            if "requires the key to exist" in text:
                return False
            raise
        return True

    def take(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for this endpoint (pending in the group until ``accept``)."""
        got = self.client.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        return [entry_from(i, f) for _s, entries in got for i, f in entries if f]

    def reclaim(self, consumer: str, count: int) -> list[Entry]:
        """Entries another worker read and never accepted (it died): take them over."""
        got = self.client.xautoclaim(self.stream, self.group, consumer, RECLAIM_MS, count=count)
        return [entry_from(i, f) for i, f in got[1] if f]

    def accept(self, wanted: Iterable[Entry], skipped: Iterable[Entry]) -> None:
        """Queue the wanted entries for delivery now and acknowledge all of them, in one transaction."""
        wanted, ids = list(wanted), [e.id for e in wanted] + [e.id for e in skipped]
        if not ids:
            return
        with self.client.pipeline(transaction=True) as pipe:
            if wanted:
                pipe.hset(self.payload, mapping={e.id: e.data for e in wanted})
                pipe.zadd(self.due, {e.id: now_ms() for e in wanted}, nx=True)
            pipe.xack(self.stream, self.group, *ids)
            pipe.execute()

    def due_ids(self, count: int) -> list[str]:
        return self.client.zrangebyscore(self.due, "-inf", now_ms(), start=0, num=count)

    def claim(self, delivery_id: str, lease_ms: int) -> Due | None:
        """Take one due delivery for an attempt (None if another worker took it or it is gone)."""
        now = now_ms()
        got = self._claim(keys=[self.due, self.payload, self.attempts], args=[delivery_id, now, now + lease_ms])
        if not got or got[0] is None:
            return None
        return Due(delivery_id, got[0], int(got[1]))

    def done(self, delivery_id: str) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self.due, delivery_id)
            pipe.hdel(self.payload, delivery_id)
            pipe.hdel(self.attempts, delivery_id)
            pipe.execute()

    def failed(self, delivery_id: str, retry_in_ms: int, max_attempts: int, error: str, dead_max: int) -> str:
        """Record a failed attempt: ``retry`` (scheduled), ``dead`` (moved to the dead letters) or ``gone``."""
        now = now_ms()
        outcome = self._failed(keys=[self.due, self.payload, self.attempts, self.dead],
                               args=[delivery_id, now + retry_in_ms, max_attempts, error[:500], now, dead_max])
        return {0: "gone", 1: "retry", 2: "dead"}[int(outcome)]

    def pending(self) -> int:
        return int(self.client.zcard(self.due))

    def dead_letters(self, limit: int) -> list[dict]:
        return [orjson.loads(raw) for raw in self.client.lrange(self.dead, 0, limit - 1)]

    def dead_count(self) -> int:
        return int(self.client.llen(self.dead))

    def requeue_dead(self) -> int:
        """Move every dead letter back to the due deliveries (attempts start again)."""
        moved = 0
        while (raw := self.client.rpop(self.dead)) is not None:
            letter = orjson.loads(raw)
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.payload, letter["id"], letter["event"])
                pipe.zadd(self.due, {letter["id"]: now_ms()})
                pipe.hdel(self.attempts, letter["id"])
                pipe.execute()
            moved += 1
        return moved
