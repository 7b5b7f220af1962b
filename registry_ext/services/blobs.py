"""Blob semantics: per-repository visibility, uploads, mounts, deletes.

A blob is visible in a repository when its bytes are in the global store
*and* the repository holds a link to it. Uploads become blobs only after
their digest was verified; a failed finish removes the session, so nothing
partial is ever visible. Finishing and cancelling hold the session's lock
until its bytes have left the session (commit), so a PATCH, PUT or DELETE racing
them finds the session gone (404) instead of changing a stored blob. An
upload has succeeded once its blob is linked on storage: the catalog entry
in Redis follows, through the journal if Redis refuses it.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from typing import BinaryIO, Iterator

import redis

from registry_ext import failpoints
from registry_ext.config import LimitSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index import Index
from registry_ext.oci.digest import Digest, parse_digest
from registry_ext.oci.reference import validate_name
from registry_ext.oci.resumable import ALGORITHMS as RESUMABLE, ResumableHash, StateMismatch, Unavailable
from registry_ext.storage import Intent, LengthMismatch, OffsetMismatch, Storage, UploadGone, UploadInfo
from registry_ext.storage.driver.base import DriverError
from registry_ext.storage.upload_session import Hasher, UploadSession

log = logging.getLogger(__name__)


class BlobService:
    def __init__(self, storage: Storage, index: Index):
        self.storage = storage
        self.index = index

    def locate(self, name: str, digest_str: str) -> tuple[Digest, int]:
        """The digest and size of a blob visible in ``name``.

        Raises:
            RegistryError(DIGEST_INVALID, BLOB_UNKNOWN)
        """
        digest = parse_digest(digest_str)
        size = self.storage.blobs.size(digest)
        if size is None or not self.storage.repos.has_blob(name, digest):
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": digest_str})
        return digest, size

    def delete(self, name: str, digest_str: str) -> None:
        """Unlink a blob from a repository (bytes stay until garbage collection)."""
        digest, _size = self.locate(name, digest_str)
        self.storage.repos.unlink_blob(name, digest)

    def link(self, name: str, digest: Digest) -> None:
        """Make the blob visible in ``name`` and list the repository in the catalog.

        Once the link is on storage the blob *is* in the repository: a Redis
        that refuses the catalog write does not fail the request (a retry
        would find the session gone). The journal entry then stays, and the
        maintenance thread adds the repository to the catalog later.
        """
        journal = self.storage.journal
        entry = journal.open(Intent(name, catalog=True))
        self.storage.repos.link_blob(name, digest)
        failpoints.hit("blob.after-link")
        try:
            self.index.write.add_repo(name)
        except redis.RedisError as exc:
            log.warning("blob %s linked in %s; catalog update left to the journal: %s", digest, name, exc)
            return
        journal.close(entry)


log = logging.getLogger(__name__)
SESSIONS_RETRY_AFTER = 10  # seconds a client over a session cap is asked to wait
SWEEP_EVERY = 1.0  # at most one sweep per second per worker when a cap is reached (each reads every session)


class UploadService:
    def __init__(self, storage: Storage, blobs: BlobService, limits: LimitSettings | None = None):
        self.storage = storage
        self.blobs = blobs
        self.limits = limits or LimitSettings()
        self._sweep_lock = threading.Lock()
        self._swept_at = float("-inf")

    def start(self, name: str, client: str = "") -> UploadInfo:
        """Open a session for ``name`` from ``client`` (its address), within the session caps.

        Over a cap, expired sessions are swept first (at most once a second
        per worker), then counted again. Several workers opening sessions at
        the same instant may pass a cap by as many as they are (no lock
        across them): the caps bound disk and inodes, not an exact number.

        Raises:
            RegistryError(TOOMANYREQUESTS): over upload_sessions_max, _per_repo or _per_client.
        """
        over = self._over_cap(name, client)
        if over is not None and self._sweep_due():
            self.storage.uploads.sweep()
            over = self._over_cap(name, client)
        if over is not None:
            key, limit = over
            raise RegistryError(ErrorCode.TOOMANYREQUESTS, {"limit": key, "sessions": limit},
                                message=f"too many open upload sessions ({key} = {limit}); finish or cancel "
                                        "some, or retry later", headers={"Retry-After": str(SESSIONS_RETRY_AFTER)})
        return self.storage.uploads.create(name, client)

    def _over_cap(self, name: str, client: str) -> tuple[str, int] | None:
        """The first cap the open sessions reach, as (config key, value), or None."""
        counts, limits = self.storage.uploads.counts(name, client), self.limits
        for key, count, limit in (("upload_sessions_per_client", counts.client, limits.upload_sessions_per_client),
                                  ("upload_sessions_per_repo", counts.repo, limits.upload_sessions_per_repo),
                                  ("upload_sessions_max", counts.total, limits.upload_sessions_max)):
            if count >= limit:
                return f"limits.{key}", limit
        return None

    def pause_client(self, client: str, seconds: int) -> None:
        """Refuse ``client``'s uploads for ``seconds`` in every worker (a Redis fault: not paused)."""
        try:
            self.blobs.index.pauses.pause(client, seconds)
        except redis.RedisError as exc:
            log.warning("cannot pause slow client %s: %s", client, exc)

    def client_paused_for(self, client: str) -> float:
        """Seconds ``client``'s uploads are still refused for (a Redis fault: 0, uploads go on)."""
        try:
            return self.blobs.index.pauses.remaining(client)
        except redis.RedisError:
            return 0.0

    def _sweep_due(self) -> bool:
        with self._sweep_lock:
            now = time.monotonic()
            if now - self._swept_at < SWEEP_EVERY:
                return False
            self._swept_at = now
            return True

    def mount(self, name: str, digest_str: str, source: str | None) -> Digest | None:
        """Link a blob from ``source`` into ``name``; None when it cannot be mounted.

        Raises:
            RegistryError(DIGEST_INVALID, NAME_INVALID): a bad digest or ``from`` name.
        """
        digest = parse_digest(digest_str)
        if source:
            validate_name(source)
        if not source or not self.storage.repos.has_blob(source, digest):
            return None
        if not self.storage.blobs.touch(digest):  # touched: a gc run racing this mount keeps it (docs/gc.md)
            return None
        self.blobs.link(name, digest)
        return digest

    def status(self, name: str, upload_id: str) -> UploadInfo:
        """Raises: RegistryError(BLOB_UPLOAD_UNKNOWN)."""
        info = self.storage.uploads.get(upload_id)
        if info is None or info.repo != name:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id[:64]})
        return info

    def append(self, name: str, upload_id: str, body: BinaryIO, start: int | None,
               length: int | None) -> UploadInfo:
        """Append a chunk; a chunk not starting at the current offset is a 416.

        Raises:
            RegistryError(BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID (416), SIZE_INVALID)
        """
        info = self.status(name, upload_id)
        with self._session(upload_id) as session:
            hasher = self._running_hash(session, "sha256")
            size = self._write(name, session, body, start, length, hasher)
            if isinstance(hasher, ResumableHash):
                self._save_hash(session, size, hasher)
        return UploadInfo(upload_id, name, info.started_at, size)

    def finish(self, name: str, upload_id: str, digest_str: str | None, body: BinaryIO,
               start: int | None, length: int | None) -> Digest:
        """Append an optional last chunk, verify the digest, make the blob visible.

        Raises:
            RegistryError(DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN, BLOB_UPLOAD_INVALID, SIZE_INVALID)
        """
        digest = parse_digest(digest_str)
        self.status(name, upload_id)
        with self._session(upload_id) as session:  # held until the bytes are a blob
            running = self._running_hash(session, digest.algorithm)
            self._write(name, session, body, start, length, running)
            if running is not None:  # hashed as the bytes were written: not read back
                actual = Digest(digest.algorithm, running.hexdigest())
            else:
                actual, _size = session.digest_back(digest.algorithm)
            if actual != digest:
                self.storage.uploads.delete(upload_id)
                raise RegistryError(ErrorCode.DIGEST_INVALID, {"expected": str(digest), "actual": str(actual)})
            session.commit(digest)  # verified above: the blob never holds unverified bytes
            failpoints.hit("upload.after-adopt")
        self.blobs.link(name, digest)
        self.storage.uploads.delete(upload_id)
        return digest

    @staticmethod
    def _running_hash(session: UploadSession, algorithm: str) -> Hasher | None:
        """A hash of the session's bytes so far, to be fed what is appended; None: read them back.

        An empty session starts one (resumable, so a PATCH can save it for the
        request that finishes the upload, maybe in another worker); else the
        state a PATCH saved for exactly the session's size (save_hash) is resumed.
        """
        size = session.size
        try:
            if size == 0:
                return ResumableHash(algorithm) if algorithm in RESUMABLE else hashlib.new(algorithm)
            saved = session.saved_hash(size)
            resumed = ResumableHash.resume(saved) if saved is not None else None
        except (Unavailable, StateMismatch):
            return hashlib.new(algorithm) if size == 0 else None
        return resumed if resumed is not None and resumed.algorithm == algorithm else None

    @staticmethod
    def _save_hash(session: UploadSession, size: int, hasher: ResumableHash) -> None:
        """Keep the running hash for the next request; the chunk is stored either way (a failure only
        means the finishing request reads the data back)."""
        try:
            session.save_hash(size, hasher.state())
        except (OSError, DriverError) as exc:
            log.warning("upload %s: hash state not saved (%s); the finish will read the data back",
                        session.id[:64], exc)

    @contextlib.contextmanager
    def _session(self, upload_id: str) -> Iterator[UploadSession]:
        """The session, held. Raises: RegistryError(BLOB_UPLOAD_UNKNOWN)."""
        try:
            with self.storage.uploads.session(upload_id) as session:
                yield session
        except UploadGone:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"upload": upload_id[:64]}) from None

    @staticmethod
    def _write(name: str, session: UploadSession, body: BinaryIO, start: int | None,
               length: int | None, hasher: Hasher | None = None) -> int:
        """session.append with its failures as registry errors; the new size."""
        try:
            return session.append(body, start, length, hasher)
        except OffsetMismatch as exc:
            raise RegistryError(
                ErrorCode.BLOB_UPLOAD_INVALID, {"expected_start": exc.size, "start": start},
                status=416, message="chunk does not start at the current upload offset",
                headers=upload_headers(name, session.id, exc.size)) from None
        except LengthMismatch as exc:
            raise RegistryError(ErrorCode.SIZE_INVALID, {"reason": str(exc)}) from None

    def monolithic(self, name: str, digest_str: str, body: BinaryIO, length: int | None,
                   client: str = "") -> Digest:
        """POST ?digest= with the whole blob: a session opened and finished at once (within the caps)."""
        parse_digest(digest_str)
        info = self.start(name, client)
        try:
            return self.finish(name, info.id, digest_str, body, None, length)
        finally:
            self.storage.uploads.delete(info.id)

    def cancel(self, name: str, upload_id: str) -> None:
        """Remove the session, after a PATCH or PUT in progress. Raises: RegistryError(BLOB_UPLOAD_UNKNOWN)."""
        self.status(name, upload_id)
        with self._session(upload_id):
            self.storage.uploads.delete(upload_id)


def upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    """Location, Range and upload id headers of an upload session response."""
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }
