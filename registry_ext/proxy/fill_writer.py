"""The leader's side of a blob fill: upstream bytes into a temp file, verified, then committed.

One thread per fill (started by proxy/blobfill.py once ``source.open`` answered) writes every chunk
to ``fills/<alg>-<hex>.<token>``, publishing ``written`` in Redis so followers may read that far, and
holds the file to the declared size (or the hard cap when the upstream did not say). Only a body of
exactly the declared length whose digest matches is fsync'd and renamed into ``blobs/`` and linked
into the repository; anything else (an upstream dying mid-body, a wrong length or digest, a full
disk, a lost lease) removes the temp file and ends the fill as ``failed``. The thread runs whether
or not a client still reads, so a client that goes away does not waste the fetch.

``sweep`` removes temp files a killed leader left: older than a grace period and whose token no
longer holds the digest's lease.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import redis

from registry_ext.index.fills import FillIndex
from registry_ext.oci.digest import ALGORITHMS, Digest
from registry_ext.proxy.source import (UpstreamBlob, UpstreamError, UpstreamNotFound, UpstreamRefused,
                                      UpstreamUnavailable)
from registry_ext.services.blobs import BlobService
from registry_ext.storage.atomic import write_all
from registry_ext.storage.layout import Layout

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.02  # at most this often a leader tells Redis how far it wrote (and at the end)
SWEEP_GRACE_S = 120.0  # a temp file younger than this is never swept (its leader may be about to take the lease)


class LeaseLostError(Exception):
    """The fill lease expired or moved to another worker while filling: this fill stops."""


class FillWriter:
    def __init__(self, blobs: BlobService, fills: FillIndex, digest: Digest, token: str, repository: str,
                 upstream: UpstreamBlob, fd: int, limit: int, upstream_name: str):
        self.upstream_name = upstream_name
        self.blobs = blobs
        self.fills = fills
        self.digest = digest
        self.key = str(digest)
        self.token = token
        self.repository = repository
        self.upstream = upstream
        self.fd = fd
        self.limit = limit  # bytes the temp file may hold: the declared size, else the hard cap
        self.path = blobs.storage.layout.fill_temp(digest, token)

    def run(self) -> None:
        """Fill, verify, commit, link; on any failure remove the temp file and record why."""
        try:
            written = self._write()
            self._publish(written)  # verified: followers may send the last bytes while fsync runs
            self._verify_and_commit(written)
        except BaseException as exc:  # noqa: BLE001 - every failure must end the fill and free the disk
            self._close()  # before the state says failed: a follower then finds the space freed
            self._abandon(exc)
            return
        self._close()
        try:
            self.fills.end(self.key, self.token, {"status": "done", "written": written})
        except redis.RedisError as exc:
            log.warning("blob %s stored; its fill state is left to expire: %s", self.key, exc)

    def _write(self) -> int:
        written, last = 0, 0.0  # the first chunk is published at once: followers wait for it (TTFB)
        hasher = hashlib.new(self.digest.algorithm)
        for chunk in self.upstream.chunks:
            if written + len(chunk) > self.limit:
                raise UpstreamRefused(self._upstream_name(), f"blob {self.key} longer than "
                                      f"{'declared' if self.upstream.size is not None else 'the cap'} "
                                      f"({self.limit} bytes)")
            write_all(self.fd, chunk)
            hasher.update(chunk)
            written += len(chunk)
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                self._publish(written)
                last = time.monotonic()
        if self.upstream.size is not None and written != self.upstream.size:
            raise UpstreamUnavailable(self._upstream_name(), f"blob {self.key} ended at {written} of "
                                      f"{self.upstream.size} bytes")
        if hasher.hexdigest() != self.digest.hex:
            raise UpstreamRefused(self._upstream_name(), f"blob {self.key}: the bytes sent have digest "
                                  f"{self.digest.algorithm}:{hasher.hexdigest()}")
        return written

    def _publish(self, written: int) -> None:
        if not self.fills.update(self.key, self.token, {"written": written}):
            raise LeaseLostError(self.key)

    def _verify_and_commit(self, written: int) -> None:
        os.fsync(self.fd)
        self._publish(written)  # still ours: no other leader renames over the blob meanwhile
        storage = self.blobs.storage
        storage.blobs.adopt(self.digest, self.path)
        self.blobs.link(self.repository, self.digest)

    def _abandon(self, exc: BaseException) -> None:
        self.path.unlink(missing_ok=True)
        if isinstance(exc, LeaseLostError):
            log.warning("fill of %s stopped: its lease was lost", self.key)
            self.fills.forget(self.key, self.token)
            return
        log.warning("fill of %s failed, nothing stored: %s", self.key, exc)
        fields = {"status": "failed", "error": type(exc).__name__, "reason": str(exc)[:500]}
        try:
            self.fills.end(self.key, self.token, fields)
        except redis.RedisError:
            self.fills.forget(self.key, self.token)  # the lease expires; followers then take over

    def _close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            self.upstream.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            log.debug("closing the upstream body of %s failed", self.key, exc_info=True)

    def _upstream_name(self) -> str:
        return self.upstream_name


def error_from_state(upstream: str, error: str, reason: str) -> UpstreamError:
    """The upstream error another worker's fill ended with, as the same class."""
    kinds = {cls.__name__: cls for cls in (UpstreamUnavailable, UpstreamRefused, UpstreamNotFound, UpstreamError)}
    return kinds.get(error, UpstreamUnavailable)(upstream, reason or "the fill failed")


def sweep(layout: Layout, fills: FillIndex, grace_s: float = SWEEP_GRACE_S) -> int:
    """Remove fill temp files older than ``grace_s`` whose lease is gone; the count removed."""
    try:
        entries = list(os.scandir(layout.fills))
    except FileNotFoundError:
        return 0
    removed, cutoff = 0, time.time() - grace_s
    for entry in entries:
        parsed = _parse_temp(entry.name)
        try:
            if entry.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        if parsed is not None and fills.holds(str(parsed[0]), parsed[1]):
            continue
        Path(entry.path).unlink(missing_ok=True)
        removed += 1
    return removed


def _parse_temp(name: str) -> tuple[Digest, str] | None:
    """(digest, token) of a temp file name ``<alg>-<hex>.<token>``, or None for a stray file."""
    head, _, token = name.partition(".")
    algorithm, _, hexpart = head.partition("-")
    if ALGORITHMS.get(algorithm) != len(hexpart) or not token:
        return None
    return Digest(algorithm, hexpart), token
