"""Pull counts and last-pull times, per tag and per manifest.

Two hashes per repository (keys.py): ``pulls`` (field -> count) and
``pulled`` (field -> ms of the last pull), fields ``t:<tag>`` and
``m:<digest>``. A pull writes them in one pipeline, so it costs one round
trip; they are statistics, not index content: a reindex keeps them (it
cannot rebuild them from storage) and drops only those of tags and
manifests that are gone; deleting a tag or manifest drops its fields.
"""
from __future__ import annotations

import logging

import redis

from registry_ext.index.keys import Keys

log = logging.getLogger(__name__)


def tag_field(tag: str) -> str:
    return f"t:{tag}"


def manifest_field(digest: str) -> str:
    return f"m:{digest}"


class PullStore:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def record(self, name: str, tag: str | None, digest: str, at: int) -> bool:
        """Count one pull of ``digest`` (through ``tag`` when pulled by tag), in one round trip.

        A Redis failure is logged and answered False: a pull must not fail
        because its statistics could not be written.
        """
        rk = self.keys.repo(name)
        fields = [manifest_field(digest)] + ([tag_field(tag)] if tag is not None else [])
        pipe = self.client.pipeline(transaction=False)
        for field in fields:
            pipe.hincrby(rk.pulls, field, 1)
        pipe.hset(rk.pulled, mapping=dict.fromkeys(fields, at))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("pull of %s@%s not counted: %s", name, digest, exc)
            return False
        return True

    def stage_read(self, pipe, name: str, fields: list[str]) -> None:
        """Queue the counts and last-pull times of ``fields`` on a caller's pipeline (two replies;
        an empty ``fields`` asks for a field no pull writes, as HMGET needs one)."""
        rk = self.keys.repo(name)
        fields = fields or ["-"]
        pipe.hmget(rk.pulls, fields)
        pipe.hmget(rk.pulled, fields)

    def read(self, name: str, fields: list[str]) -> dict[str, tuple[int, int]]:
        """field -> (count, last pull ms) for the fields pulled at least once (one round trip)."""
        if not fields:
            return {}
        pipe = self.client.pipeline(transaction=False)
        self.stage_read(pipe, name, fields)
        counts, times = pipe.execute()
        return combine(fields, counts, times)


def combine(fields: list[str], counts: list, times: list) -> dict[str, tuple[int, int]]:
    """The replies of ``stage_read`` as field -> (count, last pull ms), unpulled fields left out."""
    return {field: (int(count), int(at)) for field, count, at in zip(fields, counts, times)
            if count is not None and at is not None}
