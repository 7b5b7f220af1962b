"""A manifest's index entry: what listings show of it, from its bytes and its image config."""
from __future__ import annotations

from typing import Any

import orjson

from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import Manifest
from registry_ext.oci.metadata import describe, wants_config
from registry_ext.storage import ManifestRecord, Storage


def load_config(storage: Storage, manifest: Manifest) -> dict[str, Any] | None:
    """The parsed image config of a manifest, when it has one that is readable JSON."""
    if not wants_config(manifest):
        return None
    data = storage.blobs.read(parse_digest(manifest.config.digest))
    try:
        doc = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def children_of(manifest: Manifest) -> tuple[str, ...]:
    """The distinct digests an index lists (none for an image manifest), in their first order."""
    return tuple(dict.fromkeys(child.digest for child in manifest.children))


def index_entry(record: ManifestRecord, manifest: Manifest, config: dict[str, Any] | None) -> dict[str, Any]:
    """The index's JSON entry for a manifest: referrer descriptor fields plus listing metadata."""
    entry: dict[str, Any] = {"mediaType": record.media_type, "size": record.size, "pushedAt": record.pushed_at}
    entry.update(describe(manifest, config))
    # Listings show a declared artifactType only; a referrer (a manifest with a subject) also
    # gets the referrers API's fallback to the config media type (distribution-spec end-12).
    artifact_type = manifest.artifact_type if manifest.subject is not None else manifest.declared_artifact_type
    if artifact_type:
        entry["artifactType"] = artifact_type
    if manifest.subject is not None:
        entry["subject"] = manifest.subject.digest
        if manifest.annotations:
            entry["annotations"] = manifest.annotations
    return entry
