"""Retention: what the ``retention.rules`` would delete, and deleting it (docs/retention.md).

``plan`` reads the index and returns every deletion with its reasons and
sizes; nothing is changed. ``apply`` deletes exactly that through the
manifest service (the same path as ``DELETE /v2/<name>/manifests/...``), so
tag history, index, journal and update feed stay right; a tag moved or a
manifest tagged since the plan is skipped, not deleted. Garbage collection
is to call ``plan`` then ``apply`` before it sweeps blobs.

Per repository the first rule whose globs match applies. A tag is deleted
when the rule deletes tags (``keep_newest`` or ``unpulled_for``) and no keep
holds: an immutable tag (``immutable_tags``), ``keep_tags``, ``keep_range``,
one of the ``keep_newest`` highest versions of its family (oci/versions.py),
a pull or move within ``unpulled_for``. Signature tags
(``sha256-<hex>.sig``) follow their subject: deleted when this plan deletes
it, kept otherwise.

With ``untagged_older_than``, a manifest with no tag left after the plan's
tag deletions, pushed before that age, is deleted unless something kept
needs it: a kept manifest is tagged, listed by a kept index, or a referrer
whose subject is kept; and a manifest is kept while an index or referrer
that is not deleted references it. Indexes go before the manifests they
list, referrers before their subjects, so no delete needs ``force``.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from typing import Any, Iterable

from registry_ext.clock import now_ms
from registry_ext.errors import RegistryError
from registry_ext.index.pulls import tag_field
from registry_ext.index.reader import RepoSnapshot
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.oci.versions import SIGNATURE, member, parse_tag
from registry_ext.services.tag_listing import rfc3339
from registry_ext.tag_rules import ImmutableRule, RetentionRule, first_rule, immutable_rule

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Deletion:
    repository: str
    kind: str          # "tag" or "manifest"
    target: str        # the tag, or the manifest's digest
    digest: str        # the manifest (a tag's, at planning time)
    size: int          # the manifest's bytes
    content: int       # bytes of the blobs it references (config, layers): what gc may free with it
    rule: int
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Plan:
    at: int                       # ms: the time the ages were measured from
    deletions: tuple[Deletion, ...]
    repositories: int             # repositories a rule applied to
    kept_tags: int
    kept_manifests: int

    def to_json(self) -> dict[str, Any]:
        return {"at": rfc3339(self.at), "repositories": self.repositories, "keptTags": self.kept_tags,
                "keptManifests": self.kept_manifests, "deletions": [d.to_json() for d in self.deletions]}


@dataclasses.dataclass(frozen=True)
class Outcome:
    deleted: tuple[Deletion, ...]
    skipped: tuple[tuple[Deletion, str], ...]  # with the reason (changed since the plan, already gone)

    def to_json(self) -> dict[str, Any]:
        return {"deleted": len(self.deleted),
                "skipped": [dict(d.to_json(), skipped=why) for d, why in self.skipped]}


def plan(registry, rules: tuple[RetentionRule, ...], now: int | None = None) -> Plan:
    """Every deletion ``rules`` call for now, with reasons (reads only).

    ``registry`` is services.Registry; its manifest service's immutable-tag
    rules are honoured.
    """
    at = now_ms() if now is None else now
    deletions: list[Deletion] = []
    repositories = kept_tags = kept_manifests = 0
    for name in registry.index.read.repos_page(None, None):
        rule = first_rule(rules, name)
        if rule is None:
            continue
        repositories += 1
        snap = registry.index.read.snapshot(name)
        tags, manifests = plan_repository(name, snap, rule, registry.manifests.immutable, at)
        kept_tags += len(snap.tags) - len(tags)
        kept_manifests += len(snap.manifests) - len(manifests)
        contents = _contents(registry.storage, snap, manifests)
        deletions += [_deletion(name, "tag", tag, snap.tags[tag], snap, rule, why, 0) for tag, why in tags.items()]
        deletions += [_deletion(name, "manifest", digest, digest, snap, rule, why, contents.get(digest, 0))
                      for digest, why in manifests.items()]
    return Plan(at, tuple(deletions), repositories, kept_tags, kept_manifests)


def apply(registry, planned: Plan) -> Outcome:
    """Delete what ``planned`` lists, in its order, through the manifest service.

    A deletion the registry refuses now (a tag moved or a manifest tagged
    since the plan, a new index listing the manifest) or that is already
    done is skipped with the reason; the others go on.
    """
    deleted, skipped = [], []
    for item in planned.deletions:
        try:
            if item.kind == "tag":
                registry.manifests.delete(item.repository, item.target, if_digest=item.digest)
            else:
                registry.manifests.delete(item.repository, item.target, if_untagged=True)
        except RegistryError as exc:
            skipped.append((item, f"{exc.code.name}: {exc.message}"))
            continue
        deleted.append(item)
    log.warning("retention: %d deleted, %d skipped", len(deleted), len(skipped))
    return Outcome(tuple(deleted), tuple(skipped))


def scheduled(registry, rules: tuple[RetentionRule, ...]):
    """A callable for gc to run first (``gc`` and the schedule in ``serve``): plan now, apply, log it.

    None when there are no rules: gc then only collects.
    """
    if not rules:
        return None

    def run() -> Outcome:
        outcome = apply(registry, plan(registry, rules))
        log.info("retention before gc: deleted %d, skipped %d", len(outcome.deleted), len(outcome.skipped))
        return outcome

    return run


def plan_repository(name: str, snap: RepoSnapshot, rule: RetentionRule, immutable: tuple[ImmutableRule, ...],
                    at: int) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """The tags and manifests ``rule`` deletes in one repository, with reasons (pure).

    Signature tags whose subject this plan deletes go too, and then what
    they leave untagged, until nothing changes.
    """
    tags = plan_tags(name, snap, rule, immutable, at)
    while True:
        manifests = plan_manifests(name, snap, rule, set(tags), at)
        orphans = {tag: (f"signature of {parse_tag(tag).subject_digest}, which this plan deletes",)
                   for tag in snap.tags
                   if tag not in tags and parse_tag(tag).subject_digest in manifests
                   and not _keeps(rule, immutable, name, tag)}
        if not orphans:
            return tags, manifests
        tags.update(orphans)


def _keeps(rule: RetentionRule, immutable: tuple[ImmutableRule, ...], name: str, tag: str) -> bool:
    """Whether a tag is kept whatever its age: immutable, or matched by ``keep_tags`` or ``keep_range``."""
    return (immutable_rule(immutable, name, tag) is not None
            or (rule.keep_pattern is not None and rule.keep_pattern.search(tag) is not None)
            or (rule.range is not None and rule.range.contains(tag)))


def plan_tags(name: str, snap: RepoSnapshot, rule: RetentionRule, immutable: tuple[ImmutableRule, ...],
              at: int) -> dict[str, tuple[str, ...]]:
    """tag -> reasons, for the tags ``rule`` deletes in one repository (pure)."""
    if not rule.deletes_tags:
        return {}
    rank = _family_ranks(snap.tags)
    out: dict[str, tuple[str, ...]] = {}
    for tag in sorted(snap.tags):
        version = parse_tag(tag)
        if version.kind == SIGNATURE or _keeps(rule, immutable, name, tag):
            continue  # signatures follow their subject (plan_repository)
        reasons = []
        if rule.keep_newest is not None:
            if rank[tag] <= rule.keep_newest:
                continue
            reasons.append(f"not among the {rule.keep_newest} newest of family {version.family} "
                           f"(number {rank[tag]})")
        if rule.unpulled_for_ms is not None:
            pulled, moved = snap.pulled.get(tag_field(tag)), snap.updated.get(tag, 0)
            if max(pulled or 0, moved) > at - rule.unpulled_for_ms:
                continue
            reasons.append(f"not pulled for {_days(rule.unpulled_for_ms)} (last pull "
                           f"{rfc3339(pulled) if pulled else 'never'}, last moved {rfc3339(moved)})")
        out[tag] = tuple(reasons)
    return out


def plan_manifests(name: str, snap: RepoSnapshot, rule: RetentionRule, doomed_tags: set[str],
                   at: int) -> dict[str, tuple[str, ...]]:
    """digest -> reasons, for the untagged manifests ``rule`` deletes, in a safe order (pure)."""
    if rule.untagged_older_than_ms is None:
        return {}
    tagged = {digest for tag, digest in snap.tags.items() if tag not in doomed_tags}
    kept = _closure(tagged, snap)
    cutoff = at - rule.untagged_older_than_ms
    doomed = {d for d, entry in snap.manifests.items()
              if d not in kept and entry.get("pushedAt", at) < cutoff}
    parents, referrers = _reverse_edges(snap)
    changed = True
    while changed:  # spare what a manifest that stays still references
        needed = {d for d in doomed if any(p not in doomed for p in parents[d] | referrers[d])}
        doomed -= needed
        changed = bool(needed)
    untagged_now = {d for d in doomed if d not in set(snap.tags.values())}
    out: dict[str, tuple[str, ...]] = {}
    for digest in _safe_order(doomed, parents, referrers):
        pushed = rfc3339(snap.manifests[digest].get("pushedAt"))
        why = "untagged" if digest in untagged_now else "untagged once this plan deletes its tags"
        out[digest] = (f"{why}, pushed {pushed}, before {_days(rule.untagged_older_than_ms)} ago",)
    return out


def _closure(roots: set[str], snap: RepoSnapshot) -> set[str]:
    """``roots`` with everything they need: the children of kept indexes, the referrers of kept subjects."""
    _parents, referrers = _reverse_edges(snap)
    kept: set[str] = set()
    todo = list(roots)
    while todo:
        digest = todo.pop()
        if digest in kept:
            continue
        kept.add(digest)
        todo += snap.children.get(digest, ())
        todo += referrers.get(digest, ())
    return kept


def _reverse_edges(snap: RepoSnapshot) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """digest -> indexes listing it, digest -> manifests whose subject it is."""
    parents: dict[str, set[str]] = defaultdict(set)
    referrers: dict[str, set[str]] = defaultdict(set)
    for index, children in snap.children.items():
        for child in children:
            parents[child].add(index)
    for digest, entry in snap.manifests.items():
        if entry.get("subject"):
            referrers[entry["subject"]].add(digest)
    return parents, referrers


def _safe_order(doomed: set[str], parents: dict[str, set[str]], referrers: dict[str, set[str]]) -> list[str]:
    """``doomed`` with each manifest after the doomed indexes listing it and the doomed referrers of it."""
    order: list[str] = []
    placed: set[str] = set()

    def place(digest: str, path: set[str]) -> None:
        if digest in placed or digest in path:
            return
        path.add(digest)
        for first in sorted((parents[digest] | referrers[digest]) & doomed):
            place(first, path)
        placed.add(digest)
        order.append(digest)

    for digest in sorted(doomed):
        place(digest, set())
    return order


def _family_ranks(tags: Iterable[str]) -> dict[str, int]:
    """tag -> its place in its version family, 1 for the highest version (oci/versions.py order)."""
    families: dict[Any, list[str]] = defaultdict(list)
    for tag in tags:
        families[parse_tag(tag).family].append(tag)
    ranks: dict[str, int] = {}
    for members in families.values():
        for place, tag in enumerate(sorted(members, key=member, reverse=True), 1):
            ranks[tag] = place
    return ranks


def _contents(storage, snap: RepoSnapshot, digests: Iterable[str]) -> dict[str, int]:
    """Bytes of the blobs each manifest references (read from storage; 0 when it cannot be read)."""
    out: dict[str, int] = {}
    for digest in digests:
        entry = snap.manifests[digest]
        data = storage.blobs.read(parse_digest(digest))
        try:
            manifest = parse_manifest(data, entry.get("mediaType")) if data else None
        except RegistryError:
            manifest = None
        out[digest] = sum(blob.size for blob in manifest.required_blobs()) if manifest else 0
    return out


def _deletion(name: str, kind: str, target: str, digest: str, snap: RepoSnapshot, rule: RetentionRule,
              reasons: tuple[str, ...], content: int) -> Deletion:
    size = int(snap.manifests.get(digest, {}).get("size") or 0)
    return Deletion(name, kind, target, digest, size, content, rule.number, reasons)


def _days(ms: int) -> str:
    for unit, length in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % length == 0:
            return f"{ms // length}{unit}"
    return f"{ms // 1000}s"


def report_lines(planned: Plan) -> list[str]:
    """The plan as text: a summary line, then one line per deletion (what, sizes, rule and reasons)."""
    tags = sum(1 for d in planned.deletions if d.kind == "tag")
    manifests = [d for d in planned.deletions if d.kind == "manifest"]
    lines = [f"retention plan at {rfc3339(planned.at)}: {planned.repositories} repositories under a rule; "
             f"delete {tags} tags and {len(manifests)} manifests ({_bytes(sum(d.size for d in manifests))} "
             f"of manifests referencing {_bytes(sum(d.content for d in manifests))} of blobs); "
             f"keep {planned.kept_tags} tags and {planned.kept_manifests} manifests"]
    for d in planned.deletions:
        what = f"{d.repository}:{d.target} -> {d.digest}" if d.kind == "tag" else f"{d.repository}@{d.target}"
        size = _bytes(d.size) + (f" + {_bytes(d.content)} of blobs" if d.kind == "manifest" else "")
        lines.append(f"delete {d.kind:<8} {what}  ({size})  rule {d.rule}: {'; '.join(d.reasons)}")
    return lines


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
