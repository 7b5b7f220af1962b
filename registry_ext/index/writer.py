"""Atomic index updates, one MULTI/EXEC per change, after the storage write.

Each change touches only the keys of one repository (one Cluster slot).
Reads needed to choose the keys (the tag's previous digest) happen under
WATCH, so a concurrent change makes the transaction retry instead of
leaving the reverse sets inconsistent. The catalog key is updated in a
separate, idempotent command.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import orjson
import redis

from registry_ext.index.keys import Keys, RepoKeys
from registry_ext.oci.metadata import bound_fields
from registry_ext.oci.versions import member, parse_tag


class IndexWriter:
    def __init__(self, client: redis.Redis, keys: Keys, entry_max_bytes: int):
        self.client = client
        self.keys = keys
        self.entry_max_bytes = entry_max_bytes

    def stored_forms(self, entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What is stored for a manifest entry: the bounded listing entry, and a referrer's descriptor."""
        return stored_forms(entry, self.entry_max_bytes)

    def add_repo(self, name: str) -> None:
        self.client.zadd(self.keys.repos, {name: 0}, nx=True)

    def put_manifest(self, name: str, digest: str, entry: dict[str, Any],
                     tags: Sequence[tuple[str, int, int]] = (), children: Sequence[str] = ()) -> None:
        """Record a manifest (its referrer edge, and the edges to the ``children`` an index lists),
        and point ``tags`` = [(tag, created, updated)] at it.

        One transaction; the tags' previous digests are read under WATCH so
        the reverse sets stay right when pushes race.
        """
        rk = self.keys.repo(name)

        def write(pipe: redis.client.Pipeline) -> None:
            olds = pipe.hmget(rk.tags, [tag[0] for tag in tags]) if tags else []
            pipe.multi()
            _stage_manifest(pipe, rk, digest, self.stored_forms(entry), children)
            for (tag, created_at, updated_at), old in zip(tags, olds):
                if old is not None and old != digest:
                    pipe.srem(rk.digest_tags(old), tag)
                _stage_tag(pipe, rk, tag, digest, created_at, updated_at)

        self.client.transaction(write, rk.tags)
        self.add_repo(name)

    def delete_tag(self, name: str, tag: str) -> None:
        rk = self.keys.repo(name)

        def drop(pipe: redis.client.Pipeline) -> None:
            old = pipe.hget(rk.tags, tag)
            pipe.multi()
            if old is not None:
                pipe.srem(rk.digest_tags(old), tag)
            _stage_untag(pipe, rk, [tag])

        self.client.transaction(drop, rk.tags)

    def delete_manifest(self, name: str, digest: str) -> None:
        """Forget a manifest, its referrer edge, its edges to its children and every tag pointing at it.

        The edges from the indexes that list it (``parents:<digest>``) stay: they
        describe those indexes, which still list it (a forced delete).
        """
        rk = self.keys.repo(name)

        def drop(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hget(rk.manifests, digest)
            tags = list(pipe.smembers(rk.digest_tags(digest)))
            children = list(pipe.smembers(rk.children(digest)))
            pipe.multi()
            subject = orjson.loads(raw).get("subject") if raw else None
            if subject:
                pipe.zrem(rk.referrers(subject), digest)
            pipe.hdel(rk.manifests, digest)
            pipe.hdel(rk.descriptors, digest)
            pipe.zrem(rk.manifests_pushed, digest)
            if tags:
                _stage_untag(pipe, rk, tags)
            pipe.delete(rk.digest_tags(digest), rk.children(digest))
            for child in children:
                pipe.srem(rk.parents(child), digest)

        self.client.transaction(drop, rk.manifests, rk.tags, rk.digest_tags(digest), rk.children(digest))

    def replace_repo(self, name: str, manifests: list[tuple[str, dict[str, Any]]],
                     tags: list[tuple[str, str, int, int]], stale: Iterable[str] | None = None,
                     children: Mapping[str, Sequence[str]] | None = None) -> None:
        """Replace everything indexed for one repository in one transaction (reindex, repairs).

        ``children`` maps an index's digest to the digests it lists. ``stale``
        lists the repository's keys found by one ``keys_by_repo`` scan for a
        whole rebuild; without it this repository's keys are scanned for.
        Either way the keys the new content uses are cleared too.
        """
        rk = self.keys.repo(name)
        children = children or {}
        if stale is None:
            stale = self.client.scan_iter(match=rk.pattern, count=1000)
        doomed = set(stale) | set(_content_keys(rk, manifests, tags, children))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*doomed)
            for digest, entry in manifests:
                _stage_manifest(pipe, rk, digest, self.stored_forms(entry), children.get(digest, ()))
            for tag, digest, created_at, updated_at in tags:
                _stage_tag(pipe, rk, tag, digest, created_at, updated_at)
            pipe.execute()
        self.add_repo(name)

    def keys_by_repo(self) -> dict[str, list[str]]:
        """Every repository key, grouped by repository name, in one SCAN of the keyspace."""
        grouped: dict[str, list[str]] = {}
        base = f"{self.keys.prefix}:repo:{{"
        for key in self.client.scan_iter(match=base + "*", count=1000):
            name = key[len(base):key.find("}:", len(base))]
            grouped.setdefault(name, []).append(key)
        return grouped

    def drop_repos(self, names: Iterable[str]) -> None:
        """Remove catalog entries and keys of repositories gone from storage."""
        for name in names:
            stale = list(self.client.scan_iter(match=self.keys.repo(name).pattern, count=1000))
            if stale:
                self.client.delete(*stale)
            self.client.zrem(self.keys.repos, name)


def _content_keys(rk: RepoKeys, manifests, tags, children: Mapping[str, Sequence[str]]) -> list[str]:
    """Keys that content would write (so a replace never merges into leftovers)."""
    keys = [rk.tags, rk.tags_lex, rk.tags_created, rk.tags_updated, rk.tags_semver, rk.tags_sig,
            rk.manifests, rk.manifests_pushed, rk.descriptors]
    keys += [rk.digest_tags(digest) for digest, _entry in manifests]
    keys += [rk.referrers(entry["subject"]) for _digest, entry in manifests if entry.get("subject")]
    keys += [rk.children(digest) for digest in children]
    keys += [rk.parents(child) for listed in children.values() for child in listed]
    return keys


def stored_forms(entry: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The listing entry without annotations and with its pusher-sized fields bounded (every listing
    copies it, once per tag), and for a referrer its ``artifactType`` and ``annotations`` whole (the
    referrers API must copy them; only it reads them, by the page's byte budget)."""
    descriptor = None
    if entry.get("subject"):
        descriptor = {key: entry[key] for key in ("artifactType", "annotations") if entry.get(key)} or None
    return bound_fields({k: v for k, v in entry.items() if k != "annotations"}, max_bytes), descriptor


def _stage_manifest(pipe, rk: RepoKeys, digest: str, forms: tuple[dict[str, Any], dict[str, Any] | None],
                    children: Sequence[str] = ()) -> None:
    entry, descriptor = forms
    pipe.hset(rk.manifests, digest, orjson.dumps(entry))
    if descriptor:
        pipe.hset(rk.descriptors, digest, orjson.dumps(descriptor))
    pipe.zadd(rk.manifests_pushed, {digest: entry["pushedAt"]})
    if entry.get("subject"):
        pipe.zadd(rk.referrers(entry["subject"]), {digest: 0})
    if children:
        pipe.sadd(rk.children(digest), *children)
        for child in children:
            pipe.sadd(rk.parents(child), digest)


def _stage_tag(pipe, rk: RepoKeys, tag: str, digest: str, created_at: int, updated_at: int) -> None:
    pipe.hset(rk.tags, tag, digest)
    pipe.zadd(rk.tags_lex, {tag: 0})
    pipe.zadd(rk.tags_semver, {member(tag): 0})
    if parse_tag(tag).kind == "signature":
        pipe.zadd(rk.tags_sig, {tag: 0})
    pipe.zadd(rk.tags_created, {tag: created_at})
    pipe.zadd(rk.tags_updated, {tag: updated_at})
    pipe.sadd(rk.digest_tags(digest), tag)


def _stage_untag(pipe, rk: RepoKeys, tags: list[str]) -> None:
    pipe.hdel(rk.tags, *tags)
    pipe.zrem(rk.tags_lex, *tags)
    pipe.zrem(rk.tags_created, *tags)
    pipe.zrem(rk.tags_updated, *tags)
    pipe.zrem(rk.tags_semver, *[member(tag) for tag in tags])
    pipe.zrem(rk.tags_sig, *tags)
