"""Every key the object stores use: the filesystem layout's relative paths (storage/layout.py).

Keeping the same paths means a filesystem root copied into a bucket (``aws s3 sync``)
is a valid object-store registry, and docs/storage-layout.md describes both.
"""
from __future__ import annotations

from registry_ext.oci.digest import Digest
from registry_ext.storage.driver.base import join
from registry_ext.storage.layout import MARKER_NAME, blob_relpath

MARKER = MARKER_NAME
IDENTITY = "identity"
BLOBS = "blobs"
UPLOADS = "uploads"
REPOS = "repos"
JOURNAL = "journal"
CHUNK_DIGITS = 20  # any offset below 10**20 bytes


def blob(digest: Digest) -> str:
    return join(BLOBS, blob_relpath(digest))


def upload_dir(upload_id: str) -> str:
    return join(UPLOADS, upload_id)


def upload_info(upload_id: str) -> str:
    return join(upload_dir(upload_id), "info.json")


def upload_hash(upload_id: str) -> str:
    return join(upload_dir(upload_id), "hash.json")


def upload_chunk(upload_id: str, offset: int) -> str:
    """One accepted chunk, named by its offset (zero-padded: key order is offset order). The filesystem
    appends to one ``data`` file instead; only an object store keeps chunks apart."""
    return join(upload_dir(upload_id), f"chunk-{offset:0{CHUNK_DIGITS}d}")


def repo(name: str) -> str:
    return join(REPOS, name)


def blob_link(name: str, digest: Digest) -> str:
    return join(repo(name), "_blobs", digest.algorithm, digest.hex)


def manifest_link(name: str, digest: Digest) -> str:
    return join(repo(name), "_manifests", digest.algorithm, digest.hex)


def manifests_dir(name: str) -> str:
    return join(repo(name), "_manifests")


def tag(name: str, tag_name: str) -> str:
    return join(repo(name), "_tags", tag_name)


def tags_dir(name: str) -> str:
    return join(repo(name), "_tags")


def history_dir(name: str) -> str:
    return join(repo(name), "_history")


def history_segment(name: str, tag_name: str, segment: int) -> str:
    return join(history_dir(name), tag_name if segment == 0 else f"{tag_name}~{segment}")


def journal_entry(entry_id: str) -> str:
    return join(JOURNAL, f"{entry_id}.json")
