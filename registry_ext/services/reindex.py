"""Rebuild the Redis index from storage alone.

Storage is the source of truth: every manifest link, tag pointer and its
timestamps is on disk, so the index after ``reindex`` answers exactly as
before. Each repository is read and replaced under its lock, in one
transaction, so pushes may go on meanwhile; repositories gone from storage
are dropped from the catalog.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

from registry_ext.errors import RegistryError
from registry_ext.index import Index
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.services.manifest_entry import children_of, index_entry, load_config
from registry_ext.storage import ManifestRecord, Storage

log = logging.getLogger(__name__)


class Unreadable(Exception):
    """A manifest's bytes are missing or do not parse any more."""


@dataclasses.dataclass(frozen=True)
class Indexed:
    """What the index holds for one manifest: its entry, and the children it lists (an index)."""

    entry: dict[str, Any]
    children: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RepoState:
    """What the index should hold for one repository, from storage alone."""

    manifests: list[tuple[str, dict[str, Any]]]   # (digest, entry)
    tags: list[tuple[str, str, int, int]]         # (tag, digest, created, updated)
    children: dict[str, tuple[str, ...]]          # index digest -> the digests it lists
    unreadable: list[str]                         # digests whose bytes do not parse (left out)

    def parents(self) -> dict[str, set[str]]:
        """Child digest -> the indexes listing it (the reverse of ``children``)."""
        out: dict[str, set[str]] = {}
        for parent, listed in self.children.items():
            for child in listed:
                out.setdefault(child, set()).add(parent)
        return out


def manifest_entry(storage: Storage, record: ManifestRecord) -> Indexed:
    """The index entry of a manifest link, and its children, derived from its stored bytes.

    Raises:
        Unreadable: the bytes are missing or do not parse.
    """
    data = storage.blobs.read(parse_digest(record.digest))
    if data is None:
        raise Unreadable("bytes missing")
    try:
        manifest = parse_manifest(data, record.media_type)
    except RegistryError as exc:
        raise Unreadable(exc.message) from None
    return Indexed(index_entry(record, manifest, load_config(storage, manifest)), children_of(manifest))


def expected_state(storage: Storage, name: str) -> RepoState:
    """What the index should hold for one repository, from storage alone.

    Manifests whose bytes do not parse are listed as unreadable (those whose bytes are missing are
    left out silently: `check` reports them), and so are the tags pointing at either.
    """
    manifests, children, unreadable = [], {}, []
    for record in storage.repos.manifests(name):
        try:
            indexed = manifest_entry(storage, record)
        except Unreadable as exc:
            log.warning("skipping manifest %s in %s: %s", record.digest, name, exc)
            if storage.blobs.size(parse_digest(record.digest)) is not None:
                unreadable.append(record.digest)
            continue
        manifests.append((record.digest, indexed.entry))
        if indexed.children:
            children[record.digest] = indexed.children
    known = {digest for digest, _ in manifests}
    tags = [(t.tag, t.digest, t.created_at, t.updated_at) for t in storage.repos.tags(name) if t.digest in known]
    return RepoState(manifests, tags, children, unreadable)


def reindex(storage: Storage, index: Index, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Rebuild every repository's keys; return counts of what was indexed.

    ``progress(name)`` is called before each repository (the maintenance
    thread refreshes its lock there, and stops by raising).
    """
    counts = {"repositories": 0, "manifests": 0, "tags": 0, "skipped": 0}
    stale = index.write.keys_by_repo()
    for name in storage.repos.names():
        if progress is not None:
            progress(name)
        with storage.repos.lock(name):
            state = expected_state(storage, name)
            # no feed events: a rebuilt index follows a lost one, whose feed is rebuilt from the
            # tag history (services/feed_build.py)
            index.write.replace_repo(name, state.manifests, state.tags, stale.get(name, []), state.children,
                                     events=False)
        counts["repositories"] += 1
        counts["manifests"] += len(state.manifests)
        counts["tags"] += len(state.tags)
        counts["skipped"] += len(state.unreadable)
    index.write.drop_repos(gone_repos(storage, index))
    return counts


def gone_repos(storage: Storage, index: Index) -> list[str]:
    """Catalog entries with nothing on storage (checked now, so a repository pushed meanwhile stays)."""
    return [name for name in index.read.repos_page(None, None) if not storage.repos.exists(name)]
