"""Index queries: pages come from sorted sets at O(log N + page) cost."""
from __future__ import annotations

from typing import Any, NamedTuple

import orjson
import redis

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index.keys import Keys


class RepoSnapshot(NamedTuple):
    """One repository as retention plans from it (services/retention.py)."""

    tags: dict[str, str]                # tag -> digest
    updated: dict[str, int]             # tag -> ms it last moved
    manifests: dict[str, dict[str, Any]]  # digest -> index entry (pushedAt, size, subject ...)
    pulled: dict[str, int]              # pulls field (t:<tag>, m:<digest>) -> ms of the last pull
    children: dict[str, set[str]]       # index digest -> the digests it lists


class IndexReader:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def repo_exists(self, name: str) -> bool:
        """Whether the catalog lists ``name``, asked together with whether the index is complete.

        A flushed index knows no repository: rather than a wrong 404 before a
        worker notices the missing marker (services/maintenance.py), this 503s.

        Raises:
            RegistryError(UNSUPPORTED, 503): the index marker is missing.
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.zscore(self.keys.repos, name)
        pipe.exists(self.keys.meta)
        score, complete = pipe.execute()
        if not complete:
            raise index_incomplete()
        return score is not None

    def in_catalog(self, name: str) -> bool:
        """Whether the catalog lists ``name`` (no completeness check: for verification and `check`)."""
        return self.client.zscore(self.keys.repos, name) is not None

    def repos_page(self, last: str | None, limit: int | None) -> list[str]:
        """Repository names after ``last`` in byte order; ``limit`` None means all."""
        return self._lex_page(self.keys.repos, last, limit)

    def tags_page(self, name: str, last: str | None, limit: int | None) -> list[str]:
        """Tags after ``last`` (exclusive, need not exist) in byte order."""
        return self._lex_page(self.keys.repo(name).tags_lex, last, limit)

    def repo_summaries(self, names: list[str]) -> list[tuple[int, float | None]]:
        """Per repository: its number of tags and its newest tag update (ms), one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            rk = self.keys.repo(name)
            pipe.hlen(rk.tags)
            pipe.zrange(rk.tags_updated, -1, -1, withscores=True)
        replies = pipe.execute()
        return [(replies[2 * i], replies[2 * i + 1][0][1] if replies[2 * i + 1] else None)
                for i in range(len(names))]

    def tag_digest(self, name: str, tag: str) -> str | None:
        return self.client.hget(self.keys.repo(name).tags, tag)

    def digest_tags(self, name: str, digest: str) -> list[str]:
        return sorted(self.client.smembers(self.keys.repo(name).digest_tags(digest)))

    def parents(self, name: str, digest: str) -> list[str]:
        """Digests of the indexes that list ``digest`` as a child, in byte order."""
        return sorted(self.client.smembers(self.keys.repo(name).parents(digest)))

    def edges(self, name: str, digests: list[str]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """The children and the parents of each of ``digests`` (empty sets left out), one round trip."""
        rk = self.keys.repo(name)
        pipe = self.client.pipeline(transaction=False)
        for digest in digests:
            pipe.smembers(rk.children(digest))
            pipe.smembers(rk.parents(digest))
        replies = pipe.execute()
        children = {d: replies[2 * i] for i, d in enumerate(digests) if replies[2 * i]}
        parents = {d: replies[2 * i + 1] for i, d in enumerate(digests) if replies[2 * i + 1]}
        return children, parents

    def snapshot(self, name: str) -> RepoSnapshot:
        """Tags, their update times, manifests, last pulls and index edges of one repository (two round
        trips; the whole repository in memory: for the operator's retention command, not for requests)."""
        rk = self.keys.repo(name)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(rk.tags)
        pipe.zrange(rk.tags_updated, 0, -1, withscores=True)
        pipe.hgetall(rk.manifests)
        pipe.hgetall(rk.pulled)
        tags, updated, raws, pulled = pipe.execute()
        manifests = {digest: orjson.loads(raw) for digest, raw in raws.items()}
        children, _parents = self.edges(name, list(manifests)) if manifests else ({}, {})
        return RepoSnapshot(tags, {tag: int(ms) for tag, ms in updated}, manifests,
                            {field: int(ms) for field, ms in pulled.items()}, children)

    def manifest(self, name: str, digest: str) -> dict[str, Any] | None:
        raw = self.client.hget(self.keys.repo(name).manifests, digest)
        return orjson.loads(raw) if raw else None

    def manifest_entries(self, name: str, digests: list[str]) -> dict[str, dict[str, Any]]:
        """Index entries of several manifests (missing ones left out), one round trip."""
        unique = list(dict.fromkeys(digests))
        if not unique:
            return {}
        raws = self.client.hmget(self.keys.repo(name).manifests, unique)
        return {d: orjson.loads(raw) for d, raw in zip(unique, raws) if raw}

    def referrers(self, name: str, subject: str, last: str | None, limit: int,
                  max_bytes: int) -> tuple[list[dict[str, Any]], str | None]:
        """Entries of manifests whose subject is ``subject``, by digest, after ``last``, with their
        ``artifactType`` and ``annotations`` whole; and the ``last`` of the next page (None: no more).

        At most ``limit`` entries, and no more than ``max_bytes`` of them (at
        least one): the descriptors' sizes are asked first (``HSTRLEN``), so an
        oversized page is never read.
        """
        rk = self.keys.repo(name)
        digests = self._lex_page(rk.referrers(subject), last, limit + 1)
        if not digests:
            return [], None
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(rk.manifests, digests[:limit])
        for digest in digests[:limit]:
            pipe.hstrlen(rk.descriptors, digest)
        raws, *sizes = pipe.execute()
        kept, used = [], 0
        for digest, raw, size in zip(digests, raws, sizes):
            if not raw:
                continue  # deleted since the range read
            if kept and used + len(raw) + size > max_bytes:
                return self._with_descriptors(rk, kept), kept[-1][0]
            kept.append((digest, raw))
            used += len(raw) + size
        return self._with_descriptors(rk, kept), digests[limit - 1] if len(digests) > limit else None

    def _with_descriptors(self, rk, kept: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Referrer entries with their whole descriptor fields (entries written before the
        ``descriptors`` hash existed still hold theirs)."""
        if not kept:
            return []
        extras = self.client.hmget(rk.descriptors, [digest for digest, _raw in kept])
        out = []
        for (digest, raw), extra in zip(kept, extras):
            entry = dict(orjson.loads(raw), digest=digest)
            if extra:  # whole, where the listing entry may hold a bounded copy
                entry.pop("artifactType", None)
                entry.update(orjson.loads(extra))
            out.append(entry)
        return out

    def index_complete(self) -> bool:
        return bool(self.client.exists(self.keys.meta))

    def _lex_page(self, key: str, last: str | None, limit: int | None) -> list[str]:
        start = f"({last}" if last else "-"
        if limit is None:
            return self.client.zrangebylex(key, start, "+")
        return self.client.zrangebylex(key, start, "+", start=0, num=limit)


def index_incomplete() -> RegistryError:
    """503 while the index is missing or being rebuilt from storage."""
    return RegistryError(ErrorCode.UNSUPPORTED, status=503, message="registry index is being rebuilt from storage",
                         headers={"Retry-After": "5"})
