"""Eviction from the pull-through mirror's cache: ``cache_expire_days`` and ``cache_max_bytes``.

An eviction pass is retention generated per upstream, planned here and applied by
services/retention.py (``apply``: the normal manifest delete path, so tag history, index, journal
and feed stay right; a tag moved or pulled-and-refetched since the plan is skipped). The blobs the
deleted manifests leave unreferenced are freed by the gc run the pass precedes (services/gc.py):
a blob still referenced by a kept manifest is never touched.

Per upstream with a limit, over its cache repositories ``<upstream>/...`` (the first
``EVICT_REPOS`` in name order: bounded):

- expiry: a tag neither pulled nor moved for ``cache_expire_days`` goes;
- cap: when the cache's size (services/mirror_status.cache_size: the blobs its repositories link,
  bounded scan) exceeds ``cache_max_bytes``, tags go least recently pulled (or moved) first until
  the blobs the remaining tags need fit under the cap, counting a blob shared by images once;
- with a tag go the manifests it leaves unneeded (an index's children, referrers of its subject,
  cosign ``.sig`` tags of it), never one a kept tag still needs.

Content pulled only by digest and never tagged is not evicted here (retention's
``untagged_older_than`` covers it).
"""
from __future__ import annotations

import dataclasses
import heapq
import logging
from typing import Callable, Iterable

from registry_ext.clock import now_ms
from registry_ext.errors import RegistryError
from registry_ext.index.pulls import tag_field
from registry_ext.index.reader import RepoSnapshot
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.oci.versions import SIGNATURE, parse_tag
from registry_ext.proxy.config import Upstream, parse_upstream
from registry_ext.services import retention
from registry_ext.services.mirror_status import cache_size
from registry_ext.services.tag_listing import rfc3339
from registry_ext.tag_rules import RetentionRule

log = logging.getLogger(__name__)
EVICT_REPOS = 1000
SIZE_SCAN = 1_000_000  # blob links read to size one upstream's cache
DAY_MS = 86_400_000
Doomed = dict[tuple[str, str], tuple[str, ...]]  # (repository, tag) -> reasons


def evicting(upstreams: Iterable[Upstream]) -> list[Upstream]:
    """The upstreams with a cap or an expiry, in name order."""
    return sorted((u for u in upstreams if u.cache_max_bytes or u.cache_expire_days), key=lambda u: u.name)


def configured(proxy_upstreams: dict) -> list[Upstream]:
    """``evicting`` of ``proxy.upstreams`` (validated at start)."""
    return evicting(parse_upstream(name, table) for name, table in proxy_upstreams.items())


def plan(registry, upstreams: Iterable[Upstream], now: int | None = None) -> retention.Plan:
    """Every eviction due now, as a retention plan (reads only)."""
    at = now_ms() if now is None else now
    deletions: list[retention.Deletion] = []
    repositories = kept_tags = kept_manifests = 0
    for upstream in evicting(upstreams):
        _, names = registry.index.upstreams.cached(upstream.name, EVICT_REPOS)
        snaps = {name: registry.index.read.snapshot(name) for name in names}
        doomed = _expired(upstream, snaps, at)
        if upstream.cache_max_bytes:
            size, _, _ = cache_size(registry, names, SIZE_SCAN)
            if size > upstream.cache_max_bytes:
                doomed.update(_over_cap(registry, upstream, snaps, doomed, size))
        for name, snap in snaps.items():
            tags = {tag: why for (repo, tag), why in doomed.items() if repo == name}
            found = _repo_deletions(registry, name, snap, tags, at) if tags else []
            deletions += found
            repositories += 1
            kept_tags += len(snap.tags) - sum(1 for d in found if d.kind == "tag")
            kept_manifests += len(snap.manifests) - sum(1 for d in found if d.kind == "manifest")
    return retention.Plan(at, tuple(deletions), repositories, kept_tags, kept_manifests)


def _last_use(snap: RepoSnapshot, tag: str) -> int:
    return max(snap.pulled.get(tag_field(tag)) or 0, snap.updated.get(tag, 0))


def _images(snaps: dict[str, RepoSnapshot]) -> Iterable[tuple[str, str]]:
    """(repository, tag) of every tag that is not a signature (signatures follow their subject)."""
    for name, snap in snaps.items():
        for tag in snap.tags:
            if parse_tag(tag).kind != SIGNATURE:
                yield name, tag


def _expired(upstream: Upstream, snaps: dict[str, RepoSnapshot], at: int) -> Doomed:
    if not upstream.cache_expire_days:
        return {}
    cutoff = at - upstream.cache_expire_days * DAY_MS
    return {(name, tag): (f"mirror cache of {upstream.name}: not pulled for {upstream.cache_expire_days}d "
                          f"(last pull or move {rfc3339(_last_use(snaps[name], tag))})",)
            for name, tag in _images(snaps) if _last_use(snaps[name], tag) <= cutoff}


def _over_cap(registry, upstream: Upstream, snaps: dict[str, RepoSnapshot], doomed: Doomed, size: int) -> Doomed:
    """The least recently pulled tags to evict so what the others need fits under the cap."""
    blobs = _BlobSets(registry)
    kept = [(name, tag) for name, tag in _images(snaps) if (name, tag) not in doomed]
    needs = {image: blobs.of_tag(snaps[image[0]], image[1]) for image in kept}
    refs: dict[str, int] = {}
    for need in needs.values():
        for digest in need:
            refs[digest] = refs.get(digest, 0) + 1
    total = sum(blobs.sizes[d] for d in refs)
    queue = [(_last_use(snaps[name], tag), name, tag) for name, tag in kept]
    heapq.heapify(queue)
    out: Doomed = {}
    while total > upstream.cache_max_bytes and queue:
        last, name, tag = heapq.heappop(queue)
        out[(name, tag)] = (f"mirror cache of {upstream.name}: {size} bytes over its cap of "
                            f"{upstream.cache_max_bytes}; least recently pulled (last {rfc3339(last)})",)
        for digest in needs[(name, tag)]:
            refs[digest] -= 1
            if not refs[digest]:
                total -= blobs.sizes[digest]
    return out


@dataclasses.dataclass
class _BlobSets:
    """Blobs (and their sizes) each manifest needs: itself, its config and layers, its children's."""
    registry: object
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    own: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def of_tag(self, snap: RepoSnapshot, tag: str) -> set[str]:
        out: set[str] = set()
        for digest in retention._closure({snap.tags[tag]}, snap):
            out |= self._own(snap, digest)
        return out

    def _own(self, snap: RepoSnapshot, digest: str) -> frozenset[str]:
        if digest not in self.own:
            entry = snap.manifests.get(digest, {})
            self.sizes[digest] = int(entry.get("size") or 0)
            found = {digest}
            data = self.registry.storage.blobs.read(parse_digest(digest))  # type: ignore[attr-defined]
            try:
                manifest = parse_manifest(data, entry.get("mediaType")) if data else None
            except RegistryError:
                manifest = None
            for blob in manifest.required_blobs() if manifest else ():
                found.add(str(blob.digest))
                self.sizes[str(blob.digest)] = blob.size
            self.own[digest] = frozenset(found)
        return self.own[digest]


def _repo_deletions(registry, name: str, snap: RepoSnapshot, tags: dict[str, tuple[str, ...]],
                    at: int) -> list[retention.Deletion]:
    """The tags, their ``.sig`` tags, and the manifests only they needed, in a safe order."""
    untagged = RetentionRule(0, untagged_older_than_ms=0)
    while True:
        reach = retention._closure({snap.tags[t] for t in tags}, snap)
        manifests = {d: ("untagged once the evicted tags go",)
                     for d in retention.plan_manifests(name, snap, untagged, set(tags), at + 1) if d in reach}
        orphans = {t: (f"signature of {parse_tag(t).subject_digest}, which is evicted",) for t in snap.tags
                   if t not in tags and parse_tag(t).subject_digest in manifests}
        if not orphans:
            break
        tags.update(orphans)
    contents = retention._contents(registry.storage, snap, manifests)
    out = [retention.Deletion(name, "tag", tag, snap.tags[tag], int(snap.manifests.get(snap.tags[tag], {})
                                                                         .get("size") or 0), 0, 0, why)
           for tag, why in sorted(tags.items())]
    return out + [retention.Deletion(name, "manifest", d, d, int(snap.manifests[d].get("size") or 0),
                                     contents.get(d, 0), 0, why) for d, why in manifests.items()]


def merged(first: retention.Plan, second: retention.Plan) -> retention.Plan:
    """Both plans, ``first``'s deletions first (a deletion in both is skipped the second time)."""
    return retention.Plan(first.at, first.deletions + second.deletions, first.repositories + second.repositories,
                          first.kept_tags + second.kept_tags, first.kept_manifests + second.kept_manifests)


def full_plan(registry, rules: tuple[RetentionRule, ...], upstreams: list[Upstream]) -> retention.Plan:
    """``retention.rules``' plan, then the mirror's evictions."""
    at = now_ms()
    first = retention.plan(registry, rules, at) if rules else retention.Plan(at, (), 0, 0, 0)
    return merged(first, plan(registry, upstreams, at))


def scheduled(registry, rules: tuple[RetentionRule, ...], upstreams: list[Upstream]) -> Callable[[], object] | None:
    """What gc runs first (``serve``'s schedule, the ``gc`` command): retention rules and evictions;
    None when there is neither."""
    if not upstreams:
        return retention.scheduled(registry, rules)

    def run() -> retention.Outcome:
        outcome = retention.apply(registry, full_plan(registry, rules, upstreams))
        log.info("retention and mirror eviction before gc: deleted %d, skipped %d", len(outcome.deleted),
                 len(outcome.skipped))
        return outcome

    return run
