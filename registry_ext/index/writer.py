"""Atomic index updates, one MULTI/EXEC per change, after the storage write.

Each change touches only the keys of one repository (one Cluster slot).
Reads needed to choose the keys (the tag's previous digest) happen under
WATCH, so a concurrent change makes the transaction retry instead of
leaving the reverse sets inconsistent. The catalog key is updated in a
separate, idempotent command.

A change that moves, adds or removes a tag in the index also appends the
event to the repository's ``events`` stream in the same transaction (the
update feed's outbox, index/feed.py): the feed reports exactly the tag
transitions the index went through, once each, in the repository's order.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import orjson
import redis

from registry_ext.clock import now_ms
from registry_ext.index.keys import Keys, RepoKeys
from registry_ext.index.leases import Lease as Fence, LeaseLost
from registry_ext.index.pulls import manifest_field, tag_field
from registry_ext.oci.feed_events import tag_event, transition
from registry_ext.oci.metadata import bound_fields
from registry_ext.oci.versions import member, parse_tag


class IndexWriter:
    def __init__(self, client: redis.Redis, keys: Keys, entry_max_bytes: int, events: bool = True):
        self.client = client
        self.keys = keys
        self.entry_max_bytes = entry_max_bytes
        self.events = events  # stage feed events (feed.enabled)

    def stored_forms(self, entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What is stored for a manifest entry: the bounded listing entry, and a referrer's descriptor."""
        return stored_forms(entry, self.entry_max_bytes)

    def add_repo(self, name: str) -> None:
        self.client.zadd(self.keys.repos, {name: 0}, nx=True)

    def put_manifest(self, name: str, digest: str, entry: dict[str, Any],
                     tags: Sequence[tuple[str, int, int]] = (), children: Sequence[str] = (),
                     fence: Fence | None = None) -> int:
        """Record a manifest (its referrer edge, and the edges to the ``children`` an index lists),
        and point ``tags`` = [(tag, created, updated)] at it.

        One transaction; the tags' previous digests are read under WATCH so
        the reverse sets stay right when pushes race. Returns the number of
        feed events staged (one per tag that appeared or moved). ``fence``: see ``_check_fence``.
        """
        rk = self.keys.repo(name)

        def write(pipe: redis.client.Pipeline) -> int:
            _check_fence(pipe, fence)
            olds = pipe.hmget(rk.tags, [tag[0] for tag in tags]) if tags else []
            pipe.multi()
            _stage_manifest(pipe, rk, digest, self.stored_forms(entry), children)
            staged = 0
            for (tag, created_at, updated_at), old in zip(tags, olds):
                if old is not None and old != digest:
                    pipe.srem(rk.digest_tags(old), tag)
                _stage_tag(pipe, rk, tag, digest, created_at, updated_at)
                staged += self._event(pipe, rk, name, tag, old, digest, entry, updated_at)
            return staged

        staged = self.client.transaction(write, rk.tags, *_fence_keys(fence), value_from_callable=True)
        self.add_repo(name)
        return staged

    def delete_tag(self, name: str, tag: str, at: int | None = None, fence: Fence | None = None) -> int:
        """Remove a tag; returns the number of feed events staged (1 if the index had the tag)."""
        rk = self.keys.repo(name)

        def drop(pipe: redis.client.Pipeline) -> int:
            _check_fence(pipe, fence)
            old = pipe.hget(rk.tags, tag)
            raw = pipe.hget(rk.manifests, old) if old is not None else None
            pipe.multi()
            if old is not None:
                pipe.srem(rk.digest_tags(old), tag)
            _stage_untag(pipe, rk, [tag])
            return self._event(pipe, rk, name, tag, old, None, _entry(raw), at)

        return self.client.transaction(drop, rk.tags, *_fence_keys(fence), value_from_callable=True)

    def delete_manifest(self, name: str, digest: str, at: int | None = None, fence: Fence | None = None) -> int:
        """Forget a manifest, its referrer edge, its edges to its children and every tag pointing at it
        (one feed event per tag).

        The edges from the indexes that list it (``parents:<digest>``) stay: they
        describe those indexes, which still list it (a forced delete).
        """
        rk = self.keys.repo(name)

        def drop(pipe: redis.client.Pipeline) -> int:
            _check_fence(pipe, fence)
            raw = pipe.hget(rk.manifests, digest)
            tags = sorted(pipe.smembers(rk.digest_tags(digest)))
            children = list(pipe.smembers(rk.children(digest)))
            pipe.multi()
            entry = _entry(raw)
            subject = entry.get("subject") if entry else None
            if subject:
                pipe.zrem(rk.referrers(subject), digest)
            pipe.hdel(rk.manifests, digest)
            pipe.hdel(rk.descriptors, digest)
            pipe.zrem(rk.manifests_pushed, digest)
            if tags:
                _stage_untag(pipe, rk, tags)
            pipe.delete(rk.digest_tags(digest), rk.children(digest))
            pipe.hdel(rk.pulls, manifest_field(digest))
            pipe.hdel(rk.pulled, manifest_field(digest))
            for child in children:
                pipe.srem(rk.parents(child), digest)
            return sum(self._event(pipe, rk, name, t, digest, None, entry, at) for t in tags)

        return self.client.transaction(drop, rk.manifests, rk.tags, rk.digest_tags(digest), rk.children(digest),
                                       *_fence_keys(fence), value_from_callable=True)

    def replace_repo(self, name: str, manifests: list[tuple[str, dict[str, Any]]],
                     tags: list[tuple[str, str, int, int]], stale: Iterable[str] | None = None,
                     children: Mapping[str, Sequence[str]] | None = None, events: bool = True) -> int:
        """Replace everything indexed for one repository in one transaction (reindex, repairs).

        ``children`` maps an index's digest to the digests it lists. ``stale``
        lists the repository's keys found by one ``keys_by_repo`` scan for a
        whole rebuild; without it this repository's keys are scanned for.
        Either way the keys the new content uses are cleared too. The
        ``events`` stream (and its copy marker) is kept. With ``events``, the
        tags that differ from what the index said are staged as feed events (a
        repair is a transition clients saw no event for); the caller holds the
        repository lock, so the old tags read first cannot change meanwhile.
        Returns the number of events staged.
        """
        rk = self.keys.repo(name)
        children = children or {}
        if stale is None:
            stale = self.client.scan_iter(match=rk.pattern, count=1000)
        kept = {rk.events, rk.events_copied, rk.pulls, rk.pulled}
        doomed = (set(stale) | set(_content_keys(rk, manifests, tags, children))) - kept
        old = self._tag_states(rk) if events and self.events else None
        gone = self._gone_pull_fields(rk, manifests, tags)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*doomed)
            if gone:
                pipe.hdel(rk.pulls, *gone)
                pipe.hdel(rk.pulled, *gone)
            for digest, entry in manifests:
                _stage_manifest(pipe, rk, digest, self.stored_forms(entry), children.get(digest, ()))
            for tag, digest, created_at, updated_at in tags:
                _stage_tag(pipe, rk, tag, digest, created_at, updated_at)
            staged = _stage_repairs(pipe, rk, name, old, dict(manifests), tags) if old is not None else 0
            pipe.execute()
        self.add_repo(name)
        return staged

    def _event(self, pipe, rk: RepoKeys, name: str, tag: str, old: str | None, new: str | None,
               manifest: dict[str, Any] | None, at: int | None) -> int:
        return _stage_event(pipe, rk, name, tag, old, new, manifest, at) if self.events else 0

    def _gone_pull_fields(self, rk: RepoKeys, manifests, tags) -> list[str]:
        """Pull statistics of tags and manifests the replacement no longer has."""
        present = {tag_field(tag) for tag, *_rest in tags} | {manifest_field(digest) for digest, _e in manifests}
        return [field for field in self.client.hkeys(rk.pulls) if field not in present]

    def _tag_states(self, rk: RepoKeys) -> dict[str, tuple[str, dict | None]]:
        """tag -> (digest, manifest entry) as the index has them now."""
        old = self.client.hgetall(rk.tags)
        digests = sorted(set(old.values()))
        raws = self.client.hmget(rk.manifests, digests) if digests else []
        entries = {d: _entry(raw) for d, raw in zip(digests, raws)}
        return {tag: (digest, entries.get(digest)) for tag, digest in old.items()}

    def keys_by_repo(self) -> dict[str, list[str]]:
        """Every repository key, grouped by repository name, in one SCAN of the keyspace."""
        grouped: dict[str, list[str]] = {}
        base = f"{self.keys.prefix}:repo:{{"
        for key in self.client.scan_iter(match=base + "*", count=1000):
            name = key[len(base):key.find("}:", len(base))]
            grouped.setdefault(name, []).append(key)
        return grouped

    def drop_repos(self, names: Iterable[str]) -> None:
        """Remove catalog entries and keys of repositories gone from storage (with their feed head)."""
        for name in names:
            stale = list(self.client.scan_iter(match=self.keys.repo(name).pattern, count=1000))
            if stale:
                self.client.delete(*stale)
            self.client.zrem(self.keys.repos, name)
            self.client.hdel(self.keys.feed.heads, name)


def _fence_keys(fence: Fence | None) -> tuple[str, ...]:
    """The lease key a fenced transaction WATCHes (so a lease lost before EXEC aborts it)."""
    return () if fence is None else (fence.key,)


def _check_fence(pipe, fence: Fence | None) -> None:
    """Raise LeaseLost unless the writer still holds the lease it wrote storage under.

    A host that stalled past its repository lease (index/leases.py) must not
    land an index update after another host took the lease: its storage write
    may be older than the new holder's. The key is WATCHed, so a lease lost
    between this read and EXEC aborts the transaction too (it is retried, and
    this check then raises). The write's journal entry stays; the reconciler
    makes the index match storage (services/reconcile.py).
    """
    if fence is not None and pipe.get(fence.key) != fence.token:
        raise LeaseLost(fence.key)


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
    pipe.hdel(rk.pulls, *[tag_field(tag) for tag in tags])
    pipe.hdel(rk.pulled, *[tag_field(tag) for tag in tags])
    pipe.zrem(rk.tags_lex, *tags)
    pipe.zrem(rk.tags_created, *tags)
    pipe.zrem(rk.tags_updated, *tags)
    pipe.zrem(rk.tags_semver, *[member(tag) for tag in tags])
    pipe.zrem(rk.tags_sig, *tags)


def _entry(raw: str | None) -> dict[str, Any] | None:
    return orjson.loads(raw) if raw else None


def _stage_event(pipe, rk: RepoKeys, name: str, tag: str, old: str | None, new: str | None,
                 manifest: dict[str, Any] | None, at: int | None) -> int:
    """Queue the feed event of ``tag`` going from ``old`` to ``new`` (nothing if they are equal)."""
    action = transition(old, new)
    if action is None:
        return 0
    pipe.xadd(rk.events, {"d": tag_event(name, tag, action, new, old, manifest, at or now_ms())})
    return 1


def _stage_repairs(pipe, rk: RepoKeys, name: str, old: dict[str, tuple[str, dict | None]],
                   manifests: dict[str, dict[str, Any]], tags: list[tuple[str, str, int, int]]) -> int:
    """Events for every tag a replace changes: added or moved (at its update time), or removed (now)."""
    staged = 0
    new = {tag: (digest, updated) for tag, digest, _created, updated in tags}
    for tag, (digest, updated) in sorted(new.items(), key=lambda item: (item[1][1], item[0])):
        staged += _stage_event(pipe, rk, name, tag, old.get(tag, (None, None))[0], digest,
                               manifests.get(digest), updated)
    at = now_ms()
    for tag in sorted(set(old) - set(new)):
        staged += _stage_event(pipe, rk, name, tag, old[tag][0], None, old[tag][1], at)
    return staged
