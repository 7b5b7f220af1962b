"""`registry-ext check`: find drift between storage and the index, and repair it.

Storage is the source of truth, so every repair either makes the index
match storage again (replace one repository's keys, drop repositories
that are gone) or removes storage records that point at nothing:

- a tag whose manifest link or manifest bytes are missing (``dangling-tag``),
- a manifest link whose bytes are missing (``missing-manifest-bytes``),
- a manifest that cannot be parsed any more (``unreadable-manifest``, report only),
- index content that differs from what storage implies (``index-drift``),
- a repository on storage missing from the catalog (``missing-from-catalog``: one
  holding only blobs has no other index key that would show the loss),
- a repository in the catalog with nothing on storage (``index-orphan``),
- a tag history line that does not parse, anywhere in the log
  (``torn-history-line``: a line torn by a crash or a short write before
  appends were truncated back, or damage; repaired by rewriting the
  segment without it, keeping an intact event written onto its end),
- a write that changed storage and not the index (``unfinished-write``: a
  journal entry left by a killed worker or a Redis fault; repaired by
  replaying it, services/reconcile.py),
- expired upload sessions and old temp files (``stale-upload``, ``stale-temp``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any

import orjson

from registry_ext.clock import now_ms
from registry_ext.index import Index
from registry_ext.oci.digest import parse_digest
from registry_ext.services.reconcile import Reconciler
from registry_ext.services.reindex import RepoState, expected_state, gone_repos
from registry_ext.storage import HistoryEvent, Storage

TEMP_MAX_AGE_SECONDS = 3600
CATALOG_WRITE_SECONDS = 10  # a catalog-only journal entry younger than this may belong to a running write


@dataclasses.dataclass
class Finding:
    kind: str
    repository: str | None
    subject: str
    repaired: bool = False


@dataclasses.dataclass
class CheckReport:
    findings: list[Finding] = dataclasses.field(default_factory=list)
    repositories: int = 0

    def add(self, kind: str, repository: str | None, subject: str, repaired: bool) -> None:
        self.findings.append(Finding(kind, repository, subject, repaired))

    def to_json(self) -> dict[str, Any]:
        return {"repositories": self.repositories, "findings": [dataclasses.asdict(f) for f in self.findings]}


def check(storage: Storage, index: Index, repair: bool = False) -> CheckReport:
    """Compare every repository's storage records with the index; repair when asked."""
    report = CheckReport()
    adding = _check_journal(storage, index, report, repair)
    for name in storage.repos.names():
        report.repositories += 1
        with storage.repos.lock(name):
            _check_storage(storage, name, report, repair)
            _check_history(storage, name, report, repair)
            _check_index(storage, index, name, report, repair, name in adding)
    gone = gone_repos(storage, index)
    for name in gone:
        report.add("index-orphan", name, name, repair)
    if repair:
        index.write.drop_repos(gone)
    _check_uploads(storage, report, repair)
    return report


def verify_repo(storage: Storage, index: Index, name: str) -> bool:
    """Make one repository's index content and catalog entry match storage; True if anything changed.

    The tags the repair changes become feed events (the index's clients saw no event for them),
    copied to the feed with any the repository had waiting (a restarted Redis may have lost the
    copies made just before it stopped).
    """
    with storage.repos.lock(name):
        state = expected_state(storage, name)
        changed = False
        if _drifted(index, name, state):
            _replace(index, name, state)  # lists it in the catalog too
            changed = True
        elif not index.read.in_catalog(name):
            index.write.add_repo(name)
            changed = True
        index.feed.publish(name)
        return changed


def _check_journal(storage: Storage, index: Index, report: CheckReport, repair: bool) -> set[str]:
    """Journal entries of writes that are over; the repositories whose catalog entry a write adds now.

    A held repository lock means a tag or manifest write still runs. A
    catalog-only entry (a blob linked) holds no lock: it counts as over once
    older than ``CATALOG_WRITE_SECONDS``, as such a write takes milliseconds.
    """
    adding = set()
    for path, intent in storage.journal.entries():
        if intent is None:
            continue
        if not (intent.tags or intent.manifests):
            if _age(storage, path) < CATALOG_WRITE_SECONDS:
                adding.add(intent.repo)
            else:
                report.add("unfinished-write", intent.repo, "catalog", repair)
            continue
        with storage.repos.try_lock(intent.repo) as free:
            if free and storage.journal.exists(path):  # a write that ended between the listing and the lock closed it
                report.add("unfinished-write", intent.repo, ",".join(intent.tags + intent.manifests), repair)
    if repair:
        Reconciler(storage, index).sweep()
    return adding


def _age(storage: Storage, entry) -> float:
    """Seconds since the journal entry was written; 0 when it was closed meanwhile (the write is over
    and did its catalog step)."""
    age_ms = storage.journal.age_ms(entry)
    return 0.0 if age_ms is None else age_ms / 1000


def _check_storage(storage: Storage, name: str, report: CheckReport, repair: bool) -> None:
    repos = storage.repos
    for record in list(repos.manifests(name)):
        if storage.blobs.size(parse_digest(record.digest)) is None:
            report.add("missing-manifest-bytes", name, record.digest, repair)
            if repair:
                repos.delete_manifest(name, parse_digest(record.digest))
    for tag in list(repos.tags(name)):
        digest = parse_digest(tag.digest)
        if repos.manifest(name, digest) is None or storage.blobs.size(digest) is None:
            report.add("dangling-tag", name, tag.tag, repair)
            if repair:
                repos.delete_tag(name, tag.tag)
                repos.record_history(name, HistoryEvent(tag.tag, tag.digest, now_ms(), "deleted", "", 0))


def _check_history(storage: Storage, name: str, report: CheckReport, repair: bool) -> None:
    """Lines of any tag history that do not parse (a whole read of every history: check only)."""
    for tag in storage.repos.history_tags(name):
        log = storage.repos.tag_history(name, tag)
        damage = log.damaged()
        for bad in damage:
            report.add("torn-history-line", name, f"{tag} segment {bad.segment} offset {bad.offset}", repair)
        if repair and damage:
            log.repair({bad.segment for bad in damage})


def _check_index(storage: Storage, index: Index, name: str, report: CheckReport, repair: bool,
                 being_added: bool = False) -> None:
    state = expected_state(storage, name)
    for digest in state.unreadable:
        report.add("unreadable-manifest", name, digest, False)
    if not being_added and not index.read.in_catalog(name):
        report.add("missing-from-catalog", name, name, repair)
        if repair:
            index.write.add_repo(name)
    if _drifted(index, name, state):
        report.add("index-drift", name, name, repair)
        if repair:
            _replace(index, name, state)
            index.feed.publish(name)


def _replace(index: Index, name: str, state: RepoState) -> None:
    index.write.replace_repo(name, state.manifests, state.tags, children=state.children)


def _drifted(index: Index, name: str, state: RepoState) -> bool:
    return (_actual_state(index, name) != _normal(index, state.manifests, state.tags)
            or not _derived_sizes_match(index, name, state.manifests, state.tags)
            or not _edges_match(index, name, state))


def _edges_match(index: Index, name: str, state: RepoState) -> bool:
    """The index-to-child edges, both ways, for every manifest and every listed child."""
    parents = state.parents()
    digests = sorted({digest for digest, _entry in state.manifests} | set(parents))
    children, actual_parents = index.read.edges(name, digests)
    return (children == {d: set(listed) for d, listed in state.children.items()}
            and actual_parents == parents)


def _normal(index: Index, manifests, tags) -> tuple[dict, dict, dict]:
    """What the index stores for these entries (bounded, referrer descriptors apart) and tags."""
    entries, descriptors = {}, {}
    for digest, entry in manifests:
        stored, descriptor = index.write.stored_forms(entry)
        entries[digest] = _canonical(stored)
        if descriptor:
            descriptors[digest] = _canonical(descriptor)
    return entries, {t: (d, c, u) for t, d, c, u in tags}, descriptors


def _canonical(doc) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _actual_state(index: Index, name: str) -> tuple[dict, dict, dict]:
    rk = index.keys.repo(name)
    client = index.client
    manifests = {d: _canonical(orjson.loads(v)) for d, v in client.hgetall(rk.manifests).items()}
    descriptors = {d: _canonical(orjson.loads(v)) for d, v in client.hgetall(rk.descriptors).items()}
    digests = client.hgetall(rk.tags)
    created = dict(client.zrange(rk.tags_created, 0, -1, withscores=True))
    updated = dict(client.zrange(rk.tags_updated, 0, -1, withscores=True))
    tags = {t: (d, int(created.get(t, -1)), int(updated.get(t, -1))) for t, d in digests.items()}
    return manifests, tags, descriptors


def _derived_sizes_match(index: Index, name: str, manifests, tags) -> bool:
    """The sorted sets derived from the two hashes have one member per tag / manifest."""
    rk = index.keys.repo(name)
    pipe = index.client.pipeline(transaction=False)
    for key in (rk.tags_lex, rk.tags_semver, rk.tags_created, rk.tags_updated):
        pipe.zcard(key)
    pipe.zcard(rk.manifests_pushed)
    *tag_counts, manifest_count = pipe.execute()
    return all(count == len(tags) for count in tag_counts) and manifest_count == len(manifests)


def _check_uploads(storage: Storage, report: CheckReport, repair: bool) -> None:
    layout = storage.layout
    for upload_id in storage.uploads.stale():
        report.add("stale-upload", None, upload_id, repair)
        if repair:
            storage.uploads.delete(upload_id)
    cutoff = time.time() - TEMP_MAX_AGE_SECONDS
    for path in sorted(layout.tmp.glob("*")):
        try:
            stale = path.stat().st_mtime < cutoff
        except FileNotFoundError:  # a write renamed it into place since the listing (check under load)
            continue
        if stale:
            report.add("stale-temp", None, path.name, repair)
            if repair:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
