"""Online garbage collection: sweep blob links and blobs that nothing references (docs/gc.md).

Mark: every manifest link of a repository is a root (an untagged manifest
is kept: deleting manifests is the API's or a retention rule's decision,
never gc's), and everything it references (config, layers, its own bytes)
is kept. Sweep, per repository under its lock: blob links that no manifest
of the repository references and that nobody touched within the grace
period. Then every blob that no link of any repository and no manifest
names, and that nobody touched within the grace period.

Online: removals go through ``take`` (storage/quarantine.py on a
filesystem, a lease per blob on S3: docs/gc.md#on-s3), which keeps whatever
a writer touched after the run's cutoff; uploads and mounts touch the blob
and its link, a manifest push re-checks its blobs under the repository
lock. Only storage methods and index/ functions are called, so this ports
to another storage driver with them.

On object storage a repository whose last record goes is gone (S3 has no
empty folders), so a run that removes a repository's last blob links also
drops its catalog entry, as ``check --repair`` would (``index`` given).
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Callable

import redis

from registry_ext.errors import RegistryError
from registry_ext.index import Index
from registry_ext.oci.digest import Digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.storage import Storage

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Refs:
    """What one manifest keeps: blobs (its own bytes, config, layers), child manifests, its subject."""

    blobs: tuple[str, ...]
    children: tuple[str, ...]
    subject: str | None


@dataclasses.dataclass
class RepoResult:
    links_removed: int = 0
    bytes_freed: int = 0        # blobs deleted whose link this run removed here first
    untagged_manifests: int = 0  # manifests no tag reaches (kept: docs/gc.md#untagged-manifests)


@dataclasses.dataclass
class GcReport:
    dry_run: bool
    grace_period_seconds: int
    repositories: dict[str, RepoResult] = dataclasses.field(default_factory=dict)
    blobs_deleted: int = 0
    bytes_freed: int = 0
    unattributed_blobs: int = 0  # deleted blobs no repository linked when the run began
    unattributed_bytes: int = 0
    upload_sessions_removed: int = 0
    recovered: int = 0           # files a killed run had left under gc/, put back
    unreadable: list[str] = dataclasses.field(default_factory=list)  # "<repo>@<digest>": repo not swept
    items: list[tuple[str, str, str, int]] = dataclasses.field(default_factory=list)  # dry run: what would go
    duration_seconds: float = 0.0

    @property
    def links_removed(self) -> int:
        return sum(r.links_removed for r in self.repositories.values())

    def repo(self, name: str) -> RepoResult:
        return self.repositories.setdefault(name, RepoResult())

    def to_json(self) -> dict[str, Any]:
        repos = {name: dataclasses.asdict(r) for name, r in sorted(self.repositories.items())
                 if r.links_removed or r.bytes_freed or r.untagged_manifests}
        return {"dry_run": self.dry_run, "grace_period_seconds": self.grace_period_seconds,
                "duration_seconds": round(self.duration_seconds, 3), "links_removed": self.links_removed,
                "blobs_deleted": self.blobs_deleted, "bytes_freed": self.bytes_freed,
                "unattributed": {"blobs": self.unattributed_blobs, "bytes": self.unattributed_bytes},
                "upload_sessions_removed": self.upload_sessions_removed, "recovered": self.recovered,
                "unreadable_manifests": self.unreadable, "repositories": repos}


class GarbageCollector:
    def __init__(self, storage: Storage, grace_period_seconds: int, index: Index | None = None):
        self.storage = storage
        self.grace = grace_period_seconds
        self.index = index  # the catalog a repository this run empties is dropped from (None: left as it is)
        self._refs: dict[str, Refs | None] = {}

    def collect(self, dry_run: bool = False, progress: Callable[[], None] | None = None) -> GcReport:
        """One run. ``progress()`` is called before each repository (the caller checks its lease there,
        and stops the run by raising). A dry run changes nothing and lists what would go in ``items``."""
        started = time.time()
        cutoff = started - self.grace
        report = GcReport(dry_run, self.grace)
        self._refs = {}
        if not dry_run:
            report.recovered = self.storage.blobs.recover_taken()
            report.upload_sessions_removed = self.storage.uploads.sweep()
        keep: set[str] = set()
        first_unlinked: dict[str, str] = {}  # blob digest -> repository whose link this run removed first
        for name in self.storage.repos.names():
            if progress is not None:
                progress()
            self._sweep_repo(name, cutoff, report, keep, first_unlinked)
        self._sweep_blobs(cutoff, report, keep, first_unlinked)
        if not dry_run:
            self.storage.blobs.recover_taken()  # nothing left to put back: removes gc/'s empty folders
        report.duration_seconds = time.time() - started
        return report

    # -- repositories ---------------------------------------------------------
    def _sweep_repo(self, name: str, cutoff: float, report: GcReport, keep: set[str],
                    first_unlinked: dict[str, str]) -> None:
        """Remove the repository's unreferenced, untouched blob links (decided again under its lock)."""
        repos = self.storage.repos
        digests = repos.manifest_digests(name)
        reach, unreadable = self._reach(name, digests)
        report.repo(name).untagged_manifests = self._untagged(name, digests)
        links = list(repos.blob_links(name))
        doomed = [d for d, mtime in links if str(d) not in reach and mtime <= cutoff]
        keep.update(str(d) for d in digests)
        keep.update(reach)
        keep.update(str(d) for d, mtime in links if mtime > cutoff or str(d) in reach)
        if unreadable:
            report.unreadable += [f"{name}@{digest}" for digest in unreadable]
            keep.update(str(d) for d in doomed)  # what it references is unknown: keep every link
            return
        if not doomed:
            return
        if report.dry_run:
            for digest in doomed:
                self._unlinked(name, digest, report, first_unlinked)
            return
        with repos.lock(name):
            digests = repos.manifest_digests(name)  # a push may have added some since
            reach, unreadable = self._reach(name, digests)
            keep.update(str(d) for d in digests)
            keep.update(reach)
            for digest in doomed:
                if unreadable or str(digest) in reach or not repos.take_blob_link(name, digest, cutoff):
                    keep.add(str(digest))
                else:
                    self._unlinked(name, digest, report, first_unlinked)
            if report.repo(name).links_removed and not repos.exists(name):
                self._forget(name)

    def _forget(self, name: str) -> None:
        """Drop the catalog entry of a repository this run emptied (on object storage, where it is then
        gone), under its lock. Dropped first, then looked at again: a blob linked meanwhile (a link is
        written before its catalog entry, outside the lock) puts it back."""
        if self.index is None:
            return
        try:
            self.index.write.drop_repos([name])
            if self.storage.repos.exists(name):
                self.index.write.add_repo(name)
        except redis.RedisError as exc:  # `check --repair` drops it later (an index-orphan meanwhile)
            log.warning("gc emptied %s; its catalog entry stays for now: %s", name, exc)

    def _unlinked(self, name: str, digest: Digest, report: GcReport, first_unlinked: dict[str, str]) -> None:
        report.repo(name).links_removed += 1
        first_unlinked.setdefault(str(digest), name)
        if report.dry_run:
            report.items.append(("link", name, str(digest), self.storage.blobs.size(digest) or 0))

    def _reach(self, name: str, digests: list[Digest]) -> tuple[set[str], list[str]]:
        """Blobs the repository's manifests reference, and the manifests whose bytes cannot be read."""
        reach: set[str] = set()
        unreadable = []
        for digest in digests:
            refs = self._refs_of(name, digest)
            if refs is None:
                unreadable.append(str(digest))
            else:
                reach.update(refs.blobs)
        return reach, unreadable

    def _refs_of(self, name: str, digest: Digest) -> Refs | None:
        """What a manifest references (parsed once per run, whichever repository holds it)."""
        key = str(digest)
        if key in self._refs:
            return self._refs[key]
        try:
            record = self.storage.repos.manifest(name, digest)
        except (ValueError, KeyError, TypeError):  # a damaged link file: its manifest counts as unreadable
            record = None
        data = self.storage.blobs.read(digest)
        refs = None
        if record is not None and data is not None:
            try:
                manifest = parse_manifest(data, record.media_type)
            except RegistryError:
                manifest = None
            if manifest is not None:
                blobs = [key] + [d.digest for d in ((manifest.config,) if manifest.config else ())]
                blobs += [layer.digest for layer in manifest.layers]
                refs = Refs(tuple(sys.intern(b) for b in blobs),
                            tuple(sys.intern(c.digest) for c in manifest.children),
                            manifest.subject.digest if manifest.subject else None)
        self._refs[sys.intern(key)] = refs
        return refs

    def _untagged(self, name: str, digests: list[Digest]) -> int:
        """Manifests no tag reaches through index children or referrer subjects (counted, kept)."""
        known = {str(d): self._refs.get(str(d)) for d in digests}
        try:
            reached = {t.digest for t in self.storage.repos.tags(name) if t.digest in known}
        except (ValueError, KeyError, TypeError):  # a damaged tag file (`check` reports it): count nothing
            log.warning("gc: a tag file of %s cannot be read; untagged manifests not counted", name)
            return 0
        frontier = list(reached)
        while frontier:
            found: set[str] = set()
            for digest in frontier:
                refs = known.get(digest)
                found.update(c for c in (refs.children if refs else ()) if c in known)
            found.update(d for d, refs in known.items() if refs and refs.subject in reached)
            frontier = list(found - reached)
            reached |= found
        return len(known) - len(reached)

    # -- blobs ----------------------------------------------------------------
    def _sweep_blobs(self, cutoff: float, report: GcReport, keep: set[str], first_unlinked: dict[str, str]) -> None:
        """Delete every blob nothing keeps and nobody touched since ``cutoff``."""
        for blob in self.storage.blobs.stored():
            digest = str(blob.digest)
            if digest in keep or blob.mtime > cutoff:
                continue
            size = blob.size if report.dry_run else self.storage.blobs.take(blob.digest, cutoff)
            if size is None:
                continue
            report.blobs_deleted += 1
            report.bytes_freed += size
            owner = first_unlinked.get(digest)
            if owner is None:
                report.unattributed_blobs += 1
                report.unattributed_bytes += size
            else:
                report.repo(owner).bytes_freed += size
            if report.dry_run:
                report.items.append(("blob", "", digest, size))

