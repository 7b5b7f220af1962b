"""`registry-ext check`: find drift between storage and the index, and repair it.

Storage is the source of truth, so every repair either makes the index
match storage again (replace one repository's keys, drop repositories
that are gone) or removes storage records that point at nothing:

- a tag whose manifest link or manifest bytes are missing (``dangling-tag``),
- a manifest link whose bytes are missing (``missing-manifest-bytes``),
- a manifest that cannot be parsed any more (``unreadable-manifest``, report only),
- index content that differs from what storage implies (``index-drift``),
- a repository in the catalog with nothing on storage (``index-orphan``),
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
from registry_ext.services.reindex import expected_state, gone_repos
from registry_ext.storage import HistoryEvent, Storage

TEMP_MAX_AGE_SECONDS = 3600


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
    _check_journal(storage, index, report, repair)
    for name in storage.repos.names():
        report.repositories += 1
        with storage.repos.lock(name):
            _check_storage(storage, name, report, repair)
            _check_index(storage, index, name, report, repair)
    gone = gone_repos(storage, index)
    for name in gone:
        report.add("index-orphan", name, name, repair)
    if repair:
        index.write.drop_repos(gone)
    _check_uploads(storage, report, repair)
    return report


def verify_repo(storage: Storage, index: Index, name: str) -> bool:
    """Replace one repository's index content if it differs from storage; True if it did.

    The tags the repair changes become feed events (the index's clients saw no event for them),
    copied to the feed with any the repository had waiting (a restarted Redis may have lost the
    copies made just before it stopped).
    """
    with storage.repos.lock(name):
        manifests, tags, _unreadable = expected_state(storage, name)
        drifted = _drifted(index, name, manifests, tags)
        if drifted:
            index.write.replace_repo(name, manifests, tags)
        index.feed.publish(name)
        return drifted


def _check_journal(storage: Storage, index: Index, report: CheckReport, repair: bool) -> None:
    """Journal entries of writes that are over (a held repository lock means one still runs)."""
    for path, intent in storage.journal.entries():
        if intent is None:
            continue
        with storage.repos.try_lock(intent.repo) as free:
            if free and path.exists():  # a write that ended between the listing and the lock closed it
                report.add("unfinished-write", intent.repo,
                           ",".join(intent.tags + intent.manifests) or "catalog", repair)
    if repair:
        Reconciler(storage, index).sweep()


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


def _check_index(storage: Storage, index: Index, name: str, report: CheckReport, repair: bool) -> None:
    manifests, tags, unreadable = expected_state(storage, name)
    for digest in unreadable:
        report.add("unreadable-manifest", name, digest, False)
    if _drifted(index, name, manifests, tags):
        report.add("index-drift", name, name, repair)
        if repair:
            index.write.replace_repo(name, manifests, tags)
            index.feed.publish(name)


def _drifted(index: Index, name: str, manifests, tags) -> bool:
    return (_actual_state(index, name) != _normal(manifests, tags)
            or not _derived_sizes_match(index, name, manifests, tags))


def _normal(manifests, tags) -> tuple[dict, dict]:
    return ({d: orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for d, e in manifests},
            {t: (d, c, u) for t, d, c, u in tags})


def _actual_state(index: Index, name: str) -> tuple[dict, dict]:
    rk = index.keys.repo(name)
    client = index.client
    raw = client.hgetall(rk.manifests)
    manifests = {d: orjson.dumps(orjson.loads(v), option=orjson.OPT_SORT_KEYS) for d, v in raw.items()}
    digests = client.hgetall(rk.tags)
    created = dict(client.zrange(rk.tags_created, 0, -1, withscores=True))
    updated = dict(client.zrange(rk.tags_updated, 0, -1, withscores=True))
    tags = {t: (d, int(created.get(t, -1)), int(updated.get(t, -1))) for t, d in digests.items()}
    return manifests, tags


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
