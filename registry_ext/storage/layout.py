"""THE storage layout: every path the filesystem store uses, in one place.

Storage is the source of truth; Redis is an index rebuilt from this tree
(``registry-ext reindex``)::

    <root>/
      blobs/<alg>/<hex[0:2]>/<hex>          blob bytes, manifests included; immutable,
                                            visible only after digest and size were verified
      uploads/<id>/data                     bytes of an upload session received so far
      uploads/<id>/info.json                {"repo", "started_at"} (shared by all workers)
      repos/<name>/_blobs/<alg>/<hex>       empty link: the blob belongs to this repository
      repos/<name>/_manifests/<alg>/<hex>   {"media_type", "size", "pushed_at"}: manifest link
      repos/<name>/_tags/<tag>              {"digest", "created_at", "updated_at"}: tag pointer
      repos/<name>/_history/<tag>           JSON lines {"digest", "at", "event"}: tag history
      repos/<name>/_lock                    flock serialising tag and manifest changes
      tmp/                                  temp files, renamed into place (same filesystem)
      journal/<uuid>.json                   {"repo", "tags", "manifests", "catalog"}: index updates a
                                            write has not finished yet (storage/journal.py)
      identity                              {"id", "key"}: the registry's identity and the key signing
                                            update-feed cursors (storage/identity.py), mode 0600

Times are integer milliseconds since the epoch. Repository names may hold
slashes, so a repository's files sit under underscore-prefixed folders: a
name component never starts with ``_`` (spec grammar), so ``repos/a/_tags``
and ``repos/a/b`` cannot collide. Tags never start with ``.`` and uploads
ids are 32 hex digits, so no path component can escape its folder.

Behind nginx with ``server.x_accel_prefix`` set, nginx reads ``blobs/``
itself (an internal location aliased to it): a blob GET answers with
``X-Accel-Redirect: <prefix>/<blob_relpath(digest)>``, computed from the
verified digest only.
"""
from __future__ import annotations

from pathlib import Path

from registry_ext.oci.digest import Digest


class Layout:
    """Maps registry objects to paths under one root."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.uploads = self.root / "uploads"
        self.repos = self.root / "repos"
        self.journal = self.root / "journal"
        self.identity = self.root / "identity"

    def blob(self, digest: Digest) -> Path:
        return self.root / "blobs" / blob_relpath(digest)

    def upload_dir(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def repo(self, name: str) -> Path:
        return self.repos / name

    def blob_link(self, name: str, digest: Digest) -> Path:
        return self.repo(name) / "_blobs" / digest.algorithm / digest.hex

    def manifest_link(self, name: str, digest: Digest) -> Path:
        return self.repo(name) / "_manifests" / digest.algorithm / digest.hex

    def manifests_dir(self, name: str) -> Path:
        return self.repo(name) / "_manifests"

    def tag(self, name: str, tag: str) -> Path:
        return self.repo(name) / "_tags" / tag

    def tags_dir(self, name: str) -> Path:
        return self.repo(name) / "_tags"

    def history(self, name: str, tag: str) -> Path:
        return self.repo(name) / "_history" / tag

    def lock(self, name: str) -> Path:
        return self.repo(name) / "_lock"


def blob_relpath(digest: Digest) -> str:
    """A blob's path below ``<root>/blobs/`` (also the tail of its nginx X-Accel-Redirect URI)."""
    return f"{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"
