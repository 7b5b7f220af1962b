"""Rebuild the Redis index from storage alone.

Storage is the source of truth: every manifest link, tag pointer and its
timestamps is on disk, so the index after ``reindex`` answers exactly as
before. Each repository is replaced in one transaction; repositories gone
from storage are dropped from the catalog.
"""
from __future__ import annotations

import logging

from registry_ext.errors import RegistryError
from registry_ext.index import Index
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.services.manifests import index_entry, load_config
from registry_ext.storage import Storage

log = logging.getLogger(__name__)


def expected_state(storage: Storage, name: str) -> tuple[list, list, list[str]]:
    """What the index should hold for one repository, from storage alone.

    Returns (manifests as (digest, entry)), (tags as (tag, digest, created, updated)) and the
    digests of manifests whose bytes do not parse (left out, as are those whose bytes are missing).
    """
    manifests, unreadable = [], []
    for record in storage.repos.manifests(name):
        data = storage.blobs.read(parse_digest(record.digest))
        if data is None:
            log.warning("skipping manifest %s in %s: its bytes are missing", record.digest, name)
            continue
        try:
            manifest = parse_manifest(data, record.media_type)
        except RegistryError:
            log.warning("skipping unreadable manifest %s in %s", record.digest, name)
            unreadable.append(record.digest)
            continue
        manifests.append((record.digest, index_entry(record, manifest, load_config(storage, manifest))))
    known = {digest for digest, _ in manifests}
    tags = [(t.tag, t.digest, t.created_at, t.updated_at) for t in storage.repos.tags(name) if t.digest in known]
    return manifests, tags, unreadable


def reindex(storage: Storage, index: Index) -> dict[str, int]:
    """Rebuild every repository's keys; return counts of what was indexed."""
    counts = {"repositories": 0, "manifests": 0, "tags": 0, "skipped": 0}
    names = set()
    for name in storage.repos.names():
        names.add(name)
        manifests, tags, unreadable = expected_state(storage, name)
        index.write.replace_repo(name, manifests, tags)
        counts["repositories"] += 1
        counts["manifests"] += len(manifests)
        counts["tags"] += len(tags)
        counts["skipped"] += len(unreadable)
    index.write.drop_repos_except(names)
    return counts
