"""Manifest and tag semantics: validate, store bytes, then index.

Write order (ROADMAP principles): bytes first (content-addressed blob),
then the repository's manifest link and tag pointer, then one atomic index
update. Tag moves hold the repository lock from the storage write to the
index update, so concurrent pushes of one tag leave storage and index
agreeing on the last writer. The index update stages the tag's feed event
in the same transaction; it is then copied to the update feed
(``index.feed.publish``, index/feed.py) before the lock is released, so
the feed holds each repository's events in order. A journal entry spans
the storage, index and feed steps, so a write cut short between them (a
killed worker, a Redis fault) is finished by the reconciler
(services/reconcile.py). The ``failpoints`` calls mark those steps for
the crash tests.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence


from registry_ext import failpoints
from registry_ext.clock import now_ms
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index import Index
from registry_ext.oci import mediatypes as mt
from registry_ext.oci.digest import Digest, digest_bytes, is_digest, parse_digest
from registry_ext.oci.manifest import Manifest, parse_manifest
from registry_ext.services.manifest_entry import children_of, index_entry, load_config
from registry_ext.oci.reference import is_valid_tag, validate_tag
from registry_ext.storage import HistoryEvent, Intent, ManifestRecord, Storage, TagRecord
from registry_ext.tag_rules import ImmutableRule, immutable_rule


PARENTS_SHOWN = 10  # index digests named in the detail of a refused delete


@dataclasses.dataclass(frozen=True)
class PutResult:
    digest: str
    manifest: Manifest
    tag_params: tuple[str, ...]  # the `tag` parameters applied (a push by digest), for OCI-Tag headers


@dataclasses.dataclass(frozen=True)
class StoredManifest:
    digest: str
    media_type: str
    size: int
    data: bytes | None = None


class ManifestService:
    def __init__(self, storage: Storage, index: Index, delete_enabled: bool, push_tags_max: int = 100,
                 immutable: tuple[ImmutableRule, ...] = ()):
        self.storage = storage
        self.index = index
        self.delete_enabled = delete_enabled
        self.push_tags_max = push_tags_max
        self.immutable = immutable  # immutable_tags.rules

    # -- reads --------------------------------------------------------------
    def get(self, name: str, reference: str, with_body: bool = True) -> StoredManifest:
        """The manifest a tag or digest names in ``name``.

        Raises:
            RegistryError(NAME_UNKNOWN, MANIFEST_UNKNOWN, DIGEST_INVALID)
        """
        digest = self._resolve(name, reference)
        record = self.storage.repos.manifest(name, digest)
        data = self.storage.blobs.read(digest) if record and with_body else None
        if record is None or (with_body and data is None):
            raise self._unknown(name, reference)
        return StoredManifest(str(digest), record.media_type, record.size, data)

    def pulled(self, name: str, reference: str, digest: str) -> None:
        """Count a pull (a GET that returned the manifest; HEAD is not a pull): one Redis round trip,
        never an error for the client (index/pulls.py)."""
        self.index.pulls.record(name, None if is_digest(reference) else reference, digest, now_ms())

    def check_mutable(self, name: str, tag: str, action: str) -> None:
        """Refuse to ``action`` (move, delete) a tag an ``immutable_tags`` rule covers.

        Raises:
            RegistryError(DENIED)
        """
        rule = immutable_rule(self.immutable, name, tag)
        if rule is not None:
            raise RegistryError(ErrorCode.DENIED, {"tag": tag, "rule": rule.number},
                                message=f"tag {tag!r} is immutable and cannot be {action}: {rule.describe()}")

    def _resolve(self, name: str, reference: str) -> Digest:
        if is_digest(reference):
            return parse_digest(reference)
        tag = self.storage.repos.tag(name, reference) if is_valid_tag(reference) else None
        if tag is None:
            raise self._unknown(name, reference)
        return parse_digest(tag.digest)

    def _unknown(self, name: str, reference: str) -> RegistryError:
        if not self.storage.repos.exists(name):
            return RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        return RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"reference": reference[:200]})

    # -- writes -------------------------------------------------------------
    def put(self, name: str, reference: str, data: bytes, content_type: str | None,
            tag_params: Sequence[str] = ()) -> PutResult:
        """Validate and store a manifest, tagging it when ``reference`` is a tag.

        ``tag_params`` are the ``tag`` query parameters of a push by digest
        (distribution-spec main, "Pushing Manifests"): the manifest is stored
        once and every tag is pointed at it, in one locked write.

        Raises:
            RegistryError(DIGEST_INVALID, MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN, UNSUPPORTED (400, 414),
                          DENIED (403: an immutable tag would move))
        """
        by_digest = is_digest(reference)
        wanted = parse_digest(reference) if by_digest else None
        tags = self._tags_to_push(reference, by_digest, tag_params)
        digest = digest_bytes(data, wanted.algorithm if wanted else "sha256")
        if wanted is not None and wanted != digest:
            raise RegistryError(ErrorCode.DIGEST_INVALID, {"expected": reference, "actual": str(digest)})
        manifest = parse_manifest(data, content_type)
        self._check_references(name, manifest)
        self.storage.blobs.put_bytes(digest, data)
        intent = Intent(name, tags, (str(digest),), catalog=True)
        with self.storage.repos.lock(name):
            self._references_still_there(name, manifest)
            self._tags_may_move(name, tags, str(digest))
            with self.storage.journal.pending(intent):
                self._store(name, digest, manifest, data, tags)
        return PutResult(str(digest), manifest, tags if by_digest else ())

    def _store(self, name: str, digest: Digest, manifest: Manifest, data: bytes, tags: tuple[str, ...]) -> None:
        """Link, tag and index a validated manifest (under the repository lock and a journal entry)."""
        record = self._link(name, digest, manifest, len(data))
        self.storage.blobs.put_bytes(digest, data)  # again, linked now: a gc run may have taken them (docs/gc.md)
        failpoints.hit("manifest.after-link")
        moved = [self._move_tag(name, tag, record) for tag in tags]
        entry = index_entry(record, manifest, load_config(self.storage, manifest))
        failpoints.hit("manifest.before-index")
        self.index.write.put_manifest(name, str(digest), entry,
                                      [(t.tag, t.created_at, t.updated_at) for t in moved], children_of(manifest),
                                      fence=self.storage.repos.fence(name))
        failpoints.hit("manifest.after-index")
        self.index.feed.publish(name)

    def store_fetched(self, name: str, tag: str | None, data: bytes, media_type: str | None, digest: Digest) -> None:
        """Store a manifest the pull-through mirror fetched and verified (``digest`` is its bytes'),
        tagging it when fetched by tag, through the same locked, journalled write as a push.

        Its blobs and children are not required here (they are fetched when pulled), and
        ``immutable_tags`` rules do not hold the mirror back: it follows its upstream.

        Raises:
            RegistryError(MANIFEST_INVALID): bytes that are not a manifest.
        """
        manifest = parse_manifest(data, media_type)
        tags = (tag,) if tag is not None else ()
        self.storage.blobs.put_bytes(digest, data)
        with self.storage.repos.lock(name):
            with self.storage.journal.pending(Intent(name, tags, (str(digest),), catalog=True)):
                self._store(name, digest, manifest, data, tags)

    def _references_still_there(self, name: str, manifest: Manifest) -> None:
        """Under the lock: no child was deleted since ``_check_references`` (a racing DELETE of a
        child, which found no index listing it yet, would leave this index without it), and no
        blob was swept by gc (which removes links under this lock: docs/gc.md).

        Raises:
            RegistryError(MANIFEST_BLOB_UNKNOWN)
        """
        for blob in manifest.required_blobs():
            digest = parse_digest(blob.digest)
            if not self.storage.repos.has_blob(name, digest) or self.storage.blobs.size(digest) is None:
                raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, {"digest": blob.digest},
                                    message="blob removed by garbage collection while the manifest was pushed")
        for child in manifest.children:
            if self.storage.repos.manifest(name, parse_digest(child.digest)) is None:
                raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, {"digest": child.digest},
                                    message="index references a manifest unknown to this repository")

    def _tags_may_move(self, name: str, tags: tuple[str, ...], digest: str) -> None:
        """Under the lock: an immutable tag may be created, or pushed again with its digest, not moved.

        Raises:
            RegistryError(DENIED)
        """
        for tag in tags:
            old = self.storage.repos.tag(name, tag) if self.immutable else None
            if old is not None and old.digest != digest:
                self.check_mutable(name, tag, "moved")

    def _tags_to_push(self, reference: str, by_digest: bool, tag_params: Sequence[str]) -> tuple[str, ...]:
        """The tags a push points at its manifest: the reference, or the ``tag`` parameters of a push
        by digest (valid, duplicates dropped, at most ``limits.push_tags_max``).

        Raises:
            RegistryError(MANIFEST_INVALID, UNSUPPORTED (400, 414))
        """
        if not by_digest:
            if tag_params:
                raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "tag"},
                                    message="tag parameters are only accepted with a push by digest")
            return (validate_tag(reference),)
        tags = tuple(dict.fromkeys(tag_params))
        if len(tags) > self.push_tags_max:
            raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "tag", "limit": self.push_tags_max},
                                status=414, message=f"at most {self.push_tags_max} tag parameters per push")
        for tag in tags:
            if not is_valid_tag(tag):
                raise RegistryError(ErrorCode.MANIFEST_INVALID, {"parameter": "tag", "tag": tag[:200]},
                                    message="invalid tag parameter")
        return tags

    def _check_references(self, name: str, manifest: Manifest) -> None:
        """Every referenced blob and child manifest must be in the repository, with its size.

        The empty descriptor's two-byte blob is linked on demand, only once
        everything else was found, so a refused manifest changes nothing.
        """
        repos = self.storage.repos
        wants_empty = False
        for blob in manifest.required_blobs():
            digest = parse_digest(blob.digest)
            size = self.storage.blobs.size(digest) if repos.has_blob(name, digest) else None
            if blob.digest == mt.EMPTY_DIGEST and size is None:
                size, wants_empty = len(mt.EMPTY_BLOB), True
            if size is None:
                raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, {"digest": blob.digest})
            if size != blob.size:
                raise RegistryError(ErrorCode.MANIFEST_INVALID, {"digest": blob.digest, "size": blob.size,
                                                                 "actual_size": size},
                                    message="descriptor size does not match the blob")
        for child in manifest.children:
            record = repos.manifest(name, parse_digest(child.digest))
            if record is None:
                # spec v1.1.1 "Pushing Manifests": a reference to a manifest or blob that
                # does not exist MUST give MANIFEST_BLOB_UNKNOWN.
                raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, {"digest": child.digest},
                                    message="index references a manifest unknown to this repository")
            if record.size != child.size:
                raise RegistryError(ErrorCode.MANIFEST_INVALID, {"digest": child.digest, "size": child.size,
                                                                 "actual_size": record.size},
                                    message="descriptor size does not match the manifest")
        if wants_empty:
            empty = parse_digest(mt.EMPTY_DIGEST)
            self.storage.blobs.put_bytes(empty, mt.EMPTY_BLOB)
            repos.link_blob(name, empty)

    def _link(self, name: str, digest: Digest, manifest: Manifest, size: int) -> ManifestRecord:
        """The repository's manifest link (kept with its first push time when it exists)."""
        existing = self.storage.repos.manifest(name, digest)
        if existing is not None:
            return existing
        record = ManifestRecord(str(digest), manifest.media_type, size, now_ms())
        self.storage.repos.put_manifest(name, record, digest)
        return record

    def _move_tag(self, name: str, tag: str, manifest: ManifestRecord) -> TagRecord:
        """Point the tag's file at the manifest, recording history when it changes."""
        repos = self.storage.repos
        old = repos.tag(name, tag)
        if old is not None and old.digest == manifest.digest:
            return old
        at = now_ms()
        record = TagRecord(tag, manifest.digest, old.created_at if old else at, at)
        repos.put_tag(name, record)
        failpoints.hit("manifest.after-tag")
        repos.record_history(name, HistoryEvent(tag, manifest.digest, at, "moved" if old else "created",
                                                manifest.media_type, manifest.size))
        return record

    def delete(self, name: str, reference: str, force: bool = False, *, if_digest: str | None = None,
               if_untagged: bool = False) -> None:
        """Delete a tag, or a manifest with every tag pointing at it.

        Retention (services/retention.py) deletes what it planned only: a tag
        only while it still points at ``if_digest``, a manifest only while
        ``if_untagged`` holds (checked under the lock; DENIED otherwise).

        The tags of a manifest come from storage (its tag files, read under the
        repository lock), not from the index: after a Redis fault the index may
        not know a tag yet, and a tag left behind would point at a missing manifest.
        A manifest that an index of the repository lists is kept unless ``force``:
        deleting it would break pulls of that index for its platform.

        Raises:
            RegistryError(UNSUPPORTED (405), NAME_UNKNOWN, MANIFEST_UNKNOWN, DIGEST_INVALID, DENIED (403: immutable
                          tag, or changed since a retention plan; 409: listed by an index))
        """
        if not self.delete_enabled:
            raise deletes_disabled("GET, HEAD, PUT")
        if not self.storage.repos.exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        if not is_digest(reference):
            return self._delete_tag(name, reference, if_digest)
        digest = parse_digest(reference)
        repos = self.storage.repos
        with repos.lock(name):
            if repos.manifest(name, digest) is None:
                raise self._unknown(name, reference)
            tags = repos.tags_pointing_at(name, str(digest))
            if tags and if_untagged:
                raise RegistryError(ErrorCode.DENIED, {"digest": str(digest), "tags": sorted(tags)[:PARENTS_SHOWN]},
                                    message="manifest was tagged since the deletion was planned")
            for tag in tags:  # even forced: a forced delete is about indexes, not immutable tags
                self.check_mutable(name, tag, "deleted")
            if not force:
                self._refuse_if_listed(name, str(digest))
            with self.storage.journal.pending(Intent(name, tuple(tags), (str(digest),))):
                at = now_ms()
                for tag in tags:
                    self._untag(name, tag, str(digest), at)
                failpoints.hit("delete.after-untag")
                repos.delete_manifest(name, digest)
                failpoints.hit("delete.before-index")
                self.index.write.delete_manifest(name, str(digest), at, fence=repos.fence(name))
                failpoints.hit("delete.after-index")
                self.index.feed.publish(name)

    def _refuse_if_listed(self, name: str, digest: str) -> None:
        """409 DENIED when an index still on storage lists the manifest (the edges come from the index,
        each parent is confirmed on storage, so a stale edge never blocks a delete)."""
        repos = self.storage.repos
        parents = [p for p in self.index.read.parents(name, digest) if repos.manifest(name, parse_digest(p))]
        if parents:
            raise RegistryError(
                ErrorCode.DENIED, {"digest": digest, "indexes": parents[:PARENTS_SHOWN], "count": len(parents)},
                status=409, message=f"manifest is listed by index {parents[0]}"
                                    + (f" and {len(parents) - 1} more" if len(parents) > 1 else "")
                                    + " of this repository: delete the index first, or add ?force=true "
                                      "to delete it anyway")

    def _delete_tag(self, name: str, tag: str, if_digest: str | None = None) -> None:
        repos = self.storage.repos
        with repos.lock(name):
            record = repos.tag(name, tag) if is_valid_tag(tag) else None
            if record is not None and if_digest is not None and record.digest != if_digest:
                raise RegistryError(ErrorCode.DENIED, {"tag": tag, "digest": record.digest},
                                    message="tag was moved since the deletion was planned")
            if record is None:
                if is_valid_tag(tag):
                    # a retry finishes a delete whose index step failed
                    if self.index.write.delete_tag(name, tag, fence=repos.fence(name)):
                        self.index.feed.publish(name)
                raise self._unknown(name, tag)
            self.check_mutable(name, tag, "deleted")
            with self.storage.journal.pending(Intent(name, (tag,))):
                at = now_ms()
                self._untag(name, tag, record.digest, at)
                failpoints.hit("delete.before-index")
                self.index.write.delete_tag(name, tag, at, fence=repos.fence(name))
                failpoints.hit("delete.after-index")
                self.index.feed.publish(name)

    def _untag(self, name: str, tag: str, digest: str, at: int) -> None:
        """Remove the tag's file and record the deletion (at ``at``: the time its feed event carries)."""
        repos = self.storage.repos
        manifest = repos.manifest(name, parse_digest(digest))
        repos.delete_tag(name, tag)
        repos.record_history(name, HistoryEvent(tag, digest, at, "deleted",
                                                manifest.media_type if manifest else "",
                                                manifest.size if manifest else 0))


def deletes_disabled(allow: str) -> RegistryError:
    """405 for a DELETE when `storage.delete_enabled` is false (with the RFC 9110 Allow header)."""
    return RegistryError(ErrorCode.UNSUPPORTED, status=405, message="deletes are disabled",
                         headers={"Allow": allow})
