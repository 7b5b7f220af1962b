"""Ordered scans over a repository's tag sorted sets, resumable from a position.

Each sort has one sorted set, so a page costs O(log N + page) in Redis:

- ``name``: ``tags:lex`` (score 0, member tag; position = tag);
- ``semver``: ``tags:semver`` (score 0, member ``order_key + NUL + tag``;
  position = member, or a version's bound for ``last``);
- ``created`` / ``updated``: ``tags:created`` / ``tags:updated`` (score = ms;
  position = (ms, tag); Redis orders equal scores by member, which gives
  the tie-breaker).

A position is a value, not an offset, so tags added or deleted between
pages neither repeat nor vanish from the continuation.
"""
from __future__ import annotations

import dataclasses
from typing import Union

import redis

from registry_ext.index.keys import Keys
from registry_ext.oci.versions import member_tag

TimePosition = tuple[int, str]
Position = Union[str, TimePosition]


@dataclasses.dataclass(frozen=True)
class ScanItem:
    tag: str
    position: Position


class TagScanner:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def scan(self, name: str, sort: str, descending: bool, start: str | None, position: Position | None,
             count: int, stop: str | None = None) -> list[ScanItem]:
        """Up to ``count`` tags after ``position`` (exclusive) in the sort's order.

        ``start``/``stop`` are raw ZRANGEBYLEX bounds for the lex sorts, used
        when there is no position yet (a prefix, a version or a range).
        """
        rk = self.keys.repo(name)
        if sort in ("name", "semver"):
            key = rk.tags_lex if sort == "name" else rk.tags_semver
            return self._lex(key, descending, start, position, count, stop, semver=sort == "semver")
        key = rk.tags_created if sort == "created" else rk.tags_updated
        return self.scored(key, descending, position, count)

    def _lex(self, key: str, descending: bool, start: str | None, position: Position | None, count: int,
             stop: str | None, semver: bool) -> list[ScanItem]:
        if position is not None:
            start = f"({position}"
        if descending:
            members = self.client.zrevrangebylex(key, start or "+", stop or "-", start=0, num=count)
        else:
            members = self.client.zrangebylex(key, start or "-", stop or "+", start=0, num=count)
        if semver:
            return [ScanItem(member_tag(m), m) for m in members]
        return [ScanItem(m, m) for m in members]

    def scored(self, key: str, descending: bool, position: Position | None, count: int) -> list[ScanItem]:
        """Up to ``count`` members of a time-scored set after ``(ms, member)``."""
        items: list[ScanItem] = []
        offset = 0
        while len(items) < count:
            batch = self._score_batch(key, descending, position, offset, count)
            if not batch:
                break
            offset += len(batch)
            for member, score in batch:
                if position is None or _after((int(score), member), position, descending):
                    items.append(ScanItem(member, (int(score), member)))
        return items[:count]

    def _score_batch(self, key, descending, position, offset, count):
        bound = "-inf" if position is None else position[0]
        if descending:
            bound = "+inf" if position is None else position[0]
            return self.client.zrevrangebyscore(key, bound, "-inf", start=offset, num=count, withscores=True)
        return self.client.zrangebyscore(key, bound, "+inf", start=offset, num=count, withscores=True)


def _after(item: TimePosition, position: TimePosition, descending: bool) -> bool:
    return item < position if descending else item > position
