"""How each upstream of the pull-through mirror has been answering, and what its cache holds.

One small hash per upstream (keys.py ``upstream_status``), written by the upstream client's hook
(proxy/status.py) after every call to the upstream: the time of the last answer, and of the last
error with its reason (already made safe to show: no credentials, no query strings), its HTTP
status and its kind; ``errors`` counts every error, ``window_errors`` those since ``window_ms``
(a window restarts with the first error ``window`` ms after the previous window began). Its size is
fixed whatever the traffic. Statistics only: ``reindex`` neither reads nor rebuilds it; a Redis
failure is logged, never a pull's error, and reads as "nothing known".

The cache reads (``cached``, ``freshness``) look at the catalog and the mirror's freshness hashes
(index/mirror_state.py) of the repositories ``<upstream>/...``, each bounded by its caller's limit.
"""
from __future__ import annotations

import dataclasses
import logging

import redis

from registry_ext.index.keys import Keys

log = logging.getLogger(__name__)
WINDOW_MS = 3_600_000

_FAILED = """
local start = tonumber(redis.call('HGET', KEYS[1], 'window_ms') or '0')
if tonumber(ARGV[1]) - start >= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'window_ms', ARGV[1], 'window_errors', 1)
else
  redis.call('HINCRBY', KEYS[1], 'window_errors', 1)
end
redis.call('HINCRBY', KEYS[1], 'errors', 1)
redis.call('HSET', KEYS[1], 'error_ms', ARGV[1], 'error_reason', ARGV[2], 'error_status', ARGV[3],
           'error_kind', ARGV[4])
return 1
"""


@dataclasses.dataclass(frozen=True)
class Status:
    """What is known of one upstream (times in ms; None: never, or not known)."""

    ok_ms: int | None = None
    error_ms: int | None = None
    error_reason: str = ""
    error_status: int | None = None
    error_kind: str = ""
    errors: int = 0
    window_ms: int | None = None
    window_errors: int = 0


@dataclasses.dataclass(frozen=True)
class RepoFreshness:
    """One cached repository: its tags, and the oldest and newest upstream confirmation of them."""

    name: str
    tags: int
    checked_tags: int
    oldest_ms: int | None
    newest_ms: int | None
    scanned: bool  # False: more checked tags than the limit, oldest/newest not read


class UpstreamStatus:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self._failed = client.register_script(_FAILED)

    def answered(self, upstream: str, at: int) -> None:
        """Record an answer from ``upstream`` at ``at`` (ms)."""
        try:
            self.client.hset(self.keys.upstream_status(upstream), "ok_ms", at)
        except redis.RedisError as exc:
            log.warning("status of upstream %s not recorded: %s", upstream, exc)

    def failed(self, upstream: str, at: int, reason: str, status: int | None, kind: str) -> None:
        """Record an error of ``upstream`` (``reason`` must already be safe to show)."""
        try:
            self._failed(keys=[self.keys.upstream_status(upstream)],
                         args=[at, reason, "" if status is None else status, kind, WINDOW_MS])
        except redis.RedisError as exc:
            log.warning("error of upstream %s not recorded: %s", upstream, exc)

    def read(self, upstreams: list[str]) -> dict[str, Status]:
        """The status of each upstream, one round trip (all empty when Redis does not answer)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for name in upstreams:
                pipe.hgetall(self.keys.upstream_status(name))
            replies = pipe.execute()
        except redis.RedisError as exc:
            log.warning("upstream status unreadable: %s", exc)
            return {name: Status() for name in upstreams}
        return {name: _status(found) for name, found in zip(upstreams, replies)}

    def cached(self, upstream: str, limit: int, after: str | None = None) -> tuple[int, list[str]]:
        """How many repositories ``<upstream>/...`` the catalog lists, and the first ``limit`` names
        of them (after ``after``), in byte order."""
        low, high = f"[{upstream}/", f"({upstream}0"  # '0' follows '/' in byte order
        start = f"({after}" if after else low
        pipe = self.client.pipeline(transaction=False)
        pipe.zlexcount(self.keys.repos, low, high)
        pipe.zrangebylex(self.keys.repos, start, high, start=0, num=limit)
        count, names = pipe.execute()
        return count, names

    def freshness(self, names: list[str], scan_max: int) -> list[RepoFreshness]:
        """Tags and confirmation times of each repository; a freshness hash longer than ``scan_max``
        is counted but not read. Two round trips."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            rk = self.keys.repo(name)
            pipe.hlen(rk.tags)
            pipe.hlen(rk.mirror_checked)
        counts = pipe.execute()
        readable = [name for i, name in enumerate(names) if 0 < counts[2 * i + 1] <= scan_max]
        pipe = self.client.pipeline(transaction=False)
        for name in readable:
            pipe.hvals(self.keys.repo(name).mirror_checked)
        times = dict(zip(readable, pipe.execute()))
        out = []
        for i, name in enumerate(names):
            stamps = [int(v) for v in times.get(name, []) if v.isdigit()]
            out.append(RepoFreshness(name, counts[2 * i], counts[2 * i + 1], min(stamps, default=None),
                                     max(stamps, default=None), counts[2 * i + 1] <= scan_max))
        return out


def _status(found: dict[str, str]) -> Status:
    def number(field: str) -> int | None:
        value = found.get(field, "")
        return int(value) if value.isdigit() else None

    return Status(number("ok_ms"), number("error_ms"), found.get("error_reason", ""), number("error_status"),
                  found.get("error_kind", ""), number("errors") or 0, number("window_ms"),
                  number("window_errors") or 0)
