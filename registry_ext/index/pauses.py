"""Client addresses whose uploads are refused for a while, shared by every worker.

``<p>:paused:<address>``: a string with a TTL, set when a worker cut an
upload body from that address for arriving below the minimum rate
(api/slow_bodies.py). Shared so that the client's next attempt is refused
whichever worker it reaches. Not part of the index: nothing is rebuilt
from storage, and losing it (a flush, a Redis restart) only ends the pauses
early.
"""
from __future__ import annotations

import redis

from registry_ext.index.keys import Keys


class ClientPauses:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def pause(self, address: str, seconds: int) -> None:
        """Refuse ``address`` for ``seconds`` (from now; a later pause extends it)."""
        self.client.set(self.keys.paused(address), 1, ex=seconds)

    def remaining(self, address: str) -> float:
        """Seconds ``address`` is still paused for (0: not paused)."""
        ms = self.client.pttl(self.keys.paused(address))
        return max(ms, 0) / 1000
