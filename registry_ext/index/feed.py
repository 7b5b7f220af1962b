"""The update feed in Redis: per-repository outboxes, one global stream, its epoch.

Keys in keys.py. How an event travels:

1. The index transaction that changes a tag appends the event to the
   repository's ``events`` stream (index/writer.py), in the repository's
   slot: the event exists exactly when the index change does.
2. ``append`` copies a repository's entries newer than its *head* (the
   id of the last one copied) to the global ``{feed}:stream``, numbering
   them (``n``), and moves the head, in one script on the ``{feed}`` slot:
   an entry is copied once even if a copier dies and another repeats the
   work, and in the repository's order. Callers hold the repository lock,
   so copiers of one repository never interleave.
3. ``trim_repo`` keeps the newest ``recent_per_repo`` entries of a
   repository's stream (and never one not yet copied).

The feed is *live* while ``{feed}:meta`` holds an ``epoch``. A flushed
Redis has none: copying waits (entries stay in the outboxes) until the
feed is rebuilt from storage (services/feed_build.py) under a new epoch.
A reader's position is an entry id plus its ``n``; it is valid while that
entry is still in the stream, so trimming (retention) and a Redis restart
that lost the stream's last entries are both detected, never skipped.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import redis

from registry_ext.clock import now_ms
from registry_ext.index.keys import Keys

_IDS = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function gt(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am > bm or (am == bm and as > bs)
end
"""
_APPEND = _IDS + """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local head = redis.call('HGET', KEYS[3], ARGV[1]) or '0-0'
local added = 0
for i = 4, #ARGV, 2 do
  if gt(ARGV[i], head) then
    local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'n', n, 'r', ARGV[1], 'd', ARGV[i + 1])
    head = ARGV[i]
    added = added + 1
  end
end
if added > 0 then
  redis.call('HSET', KEYS[3], ARGV[1], head)
  if ARGV[3] ~= '0' then redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3]) end
end
return added
"""
_TRIM_REPO = _IDS + """
redis.call('SET', KEYS[2], ARGV[1])
local keep = tonumber(ARGV[2])
if redis.call('XLEN', KEYS[1]) <= keep + 32 then return 0 end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', keep)
local minid = newest[#newest][1]
if gt(minid, ARGV[1]) then minid = ARGV[1] end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
"""
_READ = """
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {'building'} end
if epoch ~= ARGV[1] then return {'epoch', epoch, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)} end
local at = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #at == 0 or at[1][2][2] ~= ARGV[3] then
  return {'gone', epoch, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1),
          redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)}
end
return {'ok', epoch, redis.call('XRANGE', KEYS[1], '(' .. ARGV[2], '+', 'COUNT', ARGV[4])}
"""
_START = """
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then return {'building'} end
local heads = {}
for i = 1, #ARGV, 500 do
  local names = {}
  for j = i, math.min(i + 499, #ARGV) do names[#names + 1] = ARGV[j] end
  local got = redis.call('HMGET', KEYS[3], unpack(names))
  for j = 1, #names do heads[#heads + 1] = got[j] or '' end
end
return {'ok', epoch, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1), heads}
"""
_FINISH = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[4], KEYS[1])
redis.call('HSET', KEYS[2], 'epoch', ARGV[2], 'n', ARGV[3], 'built_at', ARGV[4])
for i = 5, #ARGV do redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[i], '$') end
redis.call('DEL', KEYS[3])
return 1
"""
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of the global stream: its id, sequence number, repository and event JSON."""

    id: str
    n: int
    repo: str
    data: str


@dataclasses.dataclass(frozen=True)
class ReadResult:
    status: str                  # ok | building | epoch | gone
    epoch: str | None = None
    entries: list[Entry] = dataclasses.field(default_factory=list)
    last: Entry | None = None    # the stream's newest entry (epoch, gone)
    first: Entry | None = None   # its oldest (gone: tells trimmed from lost)


PUBLISH_BATCH = 200  # outbox entries per copy


class FeedStore:
    def __init__(self, client: redis.Redis, keys: Keys, enabled: bool, retention_events: int, retention_ms: int,
                 recent_per_repo: int):
        self.client = client
        self.enabled = enabled
        self.keys = keys
        self.fk = keys.feed
        self.retention_events = retention_events
        self.retention_ms = retention_ms
        self.recent_per_repo = recent_per_repo
        self._append = client.register_script(_APPEND)
        self._trim_repo = client.register_script(_TRIM_REPO)
        self._read = client.register_script(_READ)
        self._start = client.register_script(_START)
        self._finish = client.register_script(_FINISH)
        self._refresh = client.register_script(_REFRESH)

    # -- copying outboxes to the feed ------------------------------------------------------
    def publish(self, name: str) -> int:
        """Copy the repository's staged events to the feed; the caller holds the repository lock.

        Returns how many were copied (0 while the feed is being built: they wait in the outbox).

        Raises:
            redis.RedisError: the events stay staged; the write's journal entry replays this.
        """
        if not self.enabled:
            return 0
        copied, head = 0, None
        while True:
            _old, entries = self.pending(name, PUBLISH_BATCH)
            if not entries:
                break
            added = self.append(name, entries)
            if added < 0:
                return copied
            copied += added
            head = entries[-1][0]
            if len(entries) < PUBLISH_BATCH:
                break
        if head is not None:
            self.trim_repo(name, head)
        return copied

    def pending(self, name: str, limit: int = 200) -> tuple[str, list[tuple[str, str]]]:
        """The repository's head and up to ``limit`` of its outbox entries after it: (id, event JSON).

        Without a head in ``{feed}:heads`` (a repository never copied, or a feed slot that lost its
        data while the repository's slot kept it) the copy in the repository's slot is used, so
        events copied before are not taken for new ones.
        """
        rk = self.keys.repo(name)
        head = self.client.hget(self.fk.heads, name) or self.client.get(rk.events_copied) or "0-0"
        raw = self.client.xrange(rk.events, f"({head}", "+", count=limit)
        return head, [(entry_id, fields["d"]) for entry_id, fields in raw]

    def append(self, name: str, entries: list[tuple[str, str]]) -> int:
        """Copy entries (id, JSON) newer than the head to the feed; -1 when the feed is not live."""
        minid = f"{now_ms() - self.retention_ms}-0" if self.retention_ms else "0"
        args: list[Any] = [name, self.retention_events, minid]
        for entry_id, data in entries:
            args += [entry_id, data]
        return int(self._append(keys=[self.fk.stream, self.fk.meta, self.fk.heads], args=args))

    def trim_repo(self, name: str, head: str) -> None:
        """Record ``head`` (copied so far) in the repository's slot; keep the newest
        ``recent_per_repo`` outbox entries and every one after ``head``."""
        rk = self.keys.repo(name)
        self._trim_repo(keys=[rk.events, rk.events_copied], args=[head, self.recent_per_repo])

    # -- reading -----------------------------------------------------------------------------
    def epoch(self) -> str | None:
        return self.client.hget(self.fk.meta, "epoch")

    def read_after(self, epoch: str, entry_id: str, n: int, count: int) -> ReadResult:
        """Up to ``count`` entries after the position (entry_id, n), checked in the same script."""
        raw = self._read(keys=[self.fk.stream, self.fk.meta], args=[epoch, entry_id, n, count])
        status = raw[0]
        if status == "building":
            return ReadResult(status)
        if status == "ok":
            return ReadResult(status, raw[1], [_entry(e) for e in raw[2]])
        first = _entry(raw[3][0]) if status == "gone" and raw[3] else None
        return ReadResult(status, raw[1], last=_entry(raw[2][0]) if raw[2] else None, first=first)

    def start(self, names: list[str]) -> tuple[str | None, Entry | None, list[str]]:
        """(epoch, newest entry, head of each name ('' for none)) read at one instant; epoch None: building."""
        raw = self._start(keys=[self.fk.stream, self.fk.meta, self.fk.heads], args=names)
        if raw[0] == "building":
            return None, None, []
        return raw[1], _entry(raw[2][0]) if raw[2] else None, list(raw[3])

    def recent(self, heads: list[tuple[str, str]], count: int) -> list[list[str]]:
        """Per (repository, head): its newest ``count`` events up to the head, oldest first."""
        pipe = self.client.pipeline(transaction=False)
        for name, head in heads:
            pipe.xrevrange(self.keys.repo(name).events, head, "-", count=count)
        return [[fields["d"] for _id, fields in reversed(got)] for got in pipe.execute()]

    def repo_events(self, name: str, count: int) -> list[str]:
        """A repository's newest ``count`` events, newest first (copied to the feed or not)."""
        return [f["d"] for _id, f in self.client.xrevrange(self.keys.repo(name).events, "+", "-", count=count)]

    def before(self, entry_id: str | None, count: int) -> list[Entry]:
        """Up to ``count`` entries before ``entry_id`` (exclusive; None: from the newest), newest first."""
        top = f"({entry_id}" if entry_id else "+"
        return [entry_from(i, f) for i, f in self.client.xrevrange(self.fk.stream, top, "-", count=count)]

    def tail(self, after: str, block_ms: int, count: int) -> list[Entry]:
        """Entries after ``after``, waiting up to ``block_ms`` for the first (XREAD BLOCK)."""
        got = self.client.xread({self.fk.stream: after}, count=count, block=block_ms)
        return [entry_from(i, f) for _stream, entries in got for i, f in entries]

    def newest_id(self) -> str:
        got = self.client.xrevrange(self.fk.stream, "+", "-", count=1)
        return got[0][0] if got else "0-0"

    # -- watch lists -------------------------------------------------------------------------
    def put_watch(self, watch_id: str, spec: bytes, ttl: int) -> None:
        self.client.set(self.fk.watch(watch_id), spec, ex=ttl)

    def get_watch(self, watch_id: str, ttl: int) -> str | None:
        """The watch list's spec, its lifetime renewed (GETEX)."""
        return self.client.getex(self.fk.watch(watch_id), ex=ttl)

    # -- building (services/feed_build.py) -----------------------------------------------------
    def acquire(self, token: str, ttl_ms: int) -> bool:
        return bool(self.client.set(self.fk.lock, token, nx=True, px=ttl_ms))

    def refresh(self, token: str, ttl_ms: int) -> bool:
        return bool(self._refresh(keys=[self.fk.lock], args=[token, ttl_ms]))

    def release(self, token: str) -> None:
        self._refresh(keys=[self.fk.lock], args=[token, 1])

    def rewrite_repo(self, name: str, history: list[bytes], pending: list[str]) -> str:
        """Replace a repository's outbox by ``history`` then ``pending`` (JSON); return the new head:
        the id of the last history entry, or 0-0 (also recorded in the repository's slot)."""
        rk = self.keys.repo(name)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(rk.events)
            for data in list(history) + list(pending):
                pipe.xadd(rk.events, {"d": data})
            ids = pipe.execute()[1:]
        head = ids[len(history) - 1] if history else "0-0"
        self.client.set(rk.events_copied, head)
        return head

    def set_heads(self, heads: dict[str, str]) -> None:
        if heads:
            self.client.hset(self.fk.heads, mapping=heads)

    def reset_heads(self) -> None:
        self.client.delete(self.fk.heads)

    def build_begin(self) -> None:
        """Start the stream being built with the epoch's first entry (so a stream is never empty)."""
        self.client.delete(self.fk.build)
        self.client.xadd(self.fk.build, {"n": 0, "r": "", "d": ""})

    def build_add(self, items: Iterable[tuple[int, str, bytes]]) -> None:
        """Append (n, repository, JSON) entries to the stream being built."""
        pipe = self.client.pipeline(transaction=False)
        for n, repo, data in items:
            pipe.xadd(self.fk.build, {"n": n, "r": repo, "d": data})
        pipe.execute()

    def build_finish(self, token: str, epoch: str, n: int, groups: list[str]) -> bool:
        """Make the built stream the feed under ``epoch`` (if the lock is still ours), with the
        webhook consumer ``groups`` at its end (deliveries already queued are kept: index/hooks.py)."""
        keys = [self.fk.stream, self.fk.meta, self.fk.lock, self.fk.build]
        return bool(self._finish(keys=keys, args=[token, epoch, n, now_ms(), *groups]))


def _entry(raw) -> Entry:
    entry_id, fields = raw
    return entry_from(entry_id, dict(zip(fields[::2], fields[1::2])))


def entry_from(entry_id: str, fields: dict) -> Entry:
    return Entry(entry_id, int(fields["n"]), fields["r"], fields["d"])
