"""The update feed read from asyncio (the waiter process, registry_ext/waiter/).

One connection follows the stream with ``XREAD BLOCK`` for every waiting
client of the process; the few other reads (the epoch, a watch list) use
the same small pool. Entries have the shape of index/feed.py's ``Entry``.
"""
from __future__ import annotations

import redis.asyncio

from registry_ext.index.feed import Entry, entry_from
from registry_ext.index.keys import Keys


class AsyncFeedTail:
    def __init__(self, url: str, prefix: str):
        self.client = redis.asyncio.Redis.from_url(url, decode_responses=True, socket_timeout=15,
                                                   socket_connect_timeout=5, health_check_interval=30)
        self.fk = Keys(prefix).feed

    async def epoch(self) -> str | None:
        return await self.client.hget(self.fk.meta, "epoch")

    async def newest_id(self) -> str:
        got = await self.client.xrevrange(self.fk.stream, "+", "-", count=1)
        return got[0][0] if got else "0-0"

    async def read(self, after: str, block_ms: int, count: int) -> list[Entry]:
        """Entries after ``after``, waiting up to ``block_ms`` for the first."""
        got = await self.client.xread({self.fk.stream: after}, count=count, block=block_ms)
        return [entry_from(i, f) for _stream, entries in got for i, f in entries]

    async def watch(self, watch_id: str, ttl: int) -> str | None:
        return await self.client.getex(self.fk.watch(watch_id), ex=ttl)

    async def close(self) -> None:
        await self.client.aclose()
