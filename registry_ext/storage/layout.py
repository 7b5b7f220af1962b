"""THE storage layout: every path the filesystem store uses, in one place.

Storage is the source of truth; Redis is an index rebuilt from this tree
(``registry-ext reindex``)::

    <root>/
      registry-ext.json                     {"format": "registry-ext", "layout": 1, "created_at"}:
                                            marks the root as ours (storage/marker.py)
      blobs/<alg>/<hex[0:2]>/<hex>          blob bytes, manifests included; immutable,
                                            visible only after digest and size were verified
      uploads/<id>/data                     bytes of an upload session received so far
      uploads/<id>/hash.json                {"offset", "state"}: the running SHA-256 of data's first offset
                                            bytes, fsynced (storage/uploads.UploadStore.save_hash)
      uploads/<id>/info.json                {"repo", "started_at"} (shared by all workers); <id> is
                                            32 hex digits: 6 naming the repository, 6 the client's
                                            address, 20 random (storage/uploads.py)
      repos/<name>/_blobs/<alg>/<hex>       empty link: the blob belongs to this repository
      repos/<name>/_manifests/<alg>/<hex>   {"media_type", "size", "pushed_at"}: manifest link
      repos/<name>/_tags/<tag>              {"digest", "created_at", "updated_at"}: tag pointer
      repos/<name>/_history/<tag>           tag history, segment 0: JSON lines {"digest", "at",
                                            "event", "media_type", "size"}, oldest first
      repos/<name>/_history/<tag>~<n>       segment n (1, 2, ...) of the same history: each segment
                                            is closed at 64 KiB (storage/history.py SEGMENT_BYTES)
      repos/<name>/_lock                    flock serialising tag and manifest changes
      fills/<alg>-<hex>.<token>             a blob being fetched from an upstream (proxy/blobfill.py):
                                            followers read it while it grows; renamed into blobs/
                                            once verified; <token> is the fill lease's (32 hex)
      tmp/                                  temp files, renamed into place (same filesystem)
      gc/<path>                             a blob or blob link garbage collection took out of
                                            <root>/<path> and is deciding on: deleted, or put
                                            back if touched meanwhile (storage/quarantine.py)
      journal/<uuid>.json                   {"repo", "tags", "manifests", "catalog"}: index updates a
                                            write has not finished yet (storage/journal.py)
      auth/token-signing-key.pem            the token signing key (auth/tokens.py), 0600
      identity                              {"id", "key"}: the registry's identity and the key signing
                                            update-feed cursors (storage/identity.py), mode 0600

Times are integer milliseconds since the epoch. Repository names may hold
slashes, so a repository's files sit under underscore-prefixed folders: a
name component never starts with ``_`` (spec grammar), so ``repos/a/_tags``
and ``repos/a/b`` cannot collide. Tags never start with ``.`` and uploads
ids are 32 hex digits, so no path component can escape its folder. ``~``
is not in the tag grammar, so a history segment ``<tag>~<n>`` never names
another tag's segment 0. The layout version in the marker changes whenever
a path here changes meaning (tests/unit/test_layout_paths.py pins them).

Behind nginx with ``server.x_accel_prefix`` set, nginx reads ``blobs/``
itself (an internal location aliased to it): a blob GET answers with
``X-Accel-Redirect: <prefix>/<blob_relpath(digest)>``, computed from the
verified digest only.
"""
from __future__ import annotations

from pathlib import Path

from registry_ext.oci.digest import Digest


LAYOUT_VERSION = 1  # the layout this tree describes, written into the marker
MARKER_NAME = "registry-ext.json"


class Layout:
    """Maps registry objects to paths under one root."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.marker = self.root / MARKER_NAME
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.uploads = self.root / "uploads"
        self.repos = self.root / "repos"
        self.journal = self.root / "journal"
        self.identity = self.root / "identity"
        self.quarantine = self.root / "gc"
        self.fills = self.root / "fills"

    def blob(self, digest: Digest) -> Path:
        return self.blobs / blob_relpath(digest)

    def fill_temp(self, digest: Digest, token: str) -> Path:
        """The temp file of the pull-through fill ``token`` of ``digest``."""
        return self.fills / f"{digest.algorithm}-{digest.hex}.{token}"

    def upload_dir(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def upload_data(self, upload_id: str) -> Path:
        return self.upload_dir(upload_id) / "data"

    def upload_info(self, upload_id: str) -> Path:
        return self.upload_dir(upload_id) / "info.json"

    def upload_hash(self, upload_id: str) -> Path:
        return self.upload_dir(upload_id) / "hash.json"

    def journal_entry(self, entry_id: str) -> Path:
        return self.journal / f"{entry_id}.json"

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

    def history_dir(self, name: str) -> Path:
        return self.repo(name) / "_history"

    def history_segment(self, name: str, tag: str, segment: int) -> Path:
        """Segment 0 keeps the name a whole history had before segments (``_history/<tag>``)."""
        return self.history_dir(name) / (tag if segment == 0 else f"{tag}~{segment}")

    def lock(self, name: str) -> Path:
        return self.repo(name) / "_lock"


def blob_relpath(digest: Digest) -> str:
    """A blob's path below ``<root>/blobs/`` (also the tail of its nginx X-Accel-Redirect URI)."""
    return f"{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"
