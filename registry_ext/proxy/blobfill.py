"""Serve an upstream blob while storing it, with one upstream fetch per blob across workers and hosts.

``BlobFills.serve(source, digest, repository)`` answers from the first of:

- the local blob store: the blob is linked into ``repository`` and streamed from storage;
- a fill in progress (another thread, worker or host holds the digest's lease, index/fills.py): the
  stream follows it, reading the leader's temp file as far as it published, then the stored blob;
- a new fill: this worker takes the lease, calls ``source.open`` (its ``UpstreamError`` is raised
  from ``serve``, before any byte) and starts a writer thread (proxy/fill_writer.py) that stores the
  body; the caller's stream follows that fill like any other follower.

Every stream reads the temp file, never the upstream, so a client that goes away (``close``) leaves
the fill running: followers and the next pull get the blob. A stream whose fill fails (the upstream
dies mid-body, sends a wrong length or digest, the disk fills, the cap is passed) raises
``FillAborted`` after the bytes it sent: the view must cut the connection, never end a short body as
complete. When a leader dies (its lease expires), a follower takes the lease over and fetches from
the start; its stream goes on from the byte it had reached (same digest, same bytes).
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from typing import BinaryIO, Callable, Generator, Iterator

from registry_ext.index.fills import FillIndex
from registry_ext.oci.digest import Digest, parse_digest
from registry_ext.proxy.fill_writer import FillWriter, error_from_state
from registry_ext.proxy.source import BlobSource, UpstreamBlob, UpstreamError, UpstreamRefused, UpstreamUnavailable
from registry_ext.services import Registry
from registry_ext.services.blobs import BlobService
from registry_ext.storage.atomic import file_mode

CHUNK_SIZE = 64 * 1024  # bytes a stream reads and yields at a time
MAX_BYTES = 64 * 1024 ** 3  # hard cap of one blob (declared or not)
LEASE_TTL_MS = 10_000  # a dead leader's fill is taken over this long after its last refresh
OPEN_WAIT_S = 120.0  # how long ``serve`` waits for another worker's upstream to answer its first byte
POLL_MIN, POLL_MAX = 0.002, 0.05  # followers poll the fill's progress with this backoff


class FillAborted(UpstreamUnavailable):
    """The fill a stream followed failed mid-body: nothing was stored; the client's body is cut."""


@dataclasses.dataclass
class Fill:
    """A blob's body for the client: ``size`` is known before the first byte when the upstream said
    Content-Length (or the blob was stored). ``chunks`` raises ``FillAborted`` when the fill it follows
    fails, an ``UpstreamError`` when taking over a dead leader's fill fails, ``OSError``/``RedisError``
    when storage or Redis does: any of them must cut the client's connection. Call ``close`` (also
    early: the fill goes on)."""

    size: int | None
    chunks: Iterator[bytes]
    close: Callable[[], None]


@dataclasses.dataclass(frozen=True)
class _Started:
    token: str
    size: int | None


class BlobFills:
    def __init__(self, blobs: BlobService, fills: FillIndex, *, max_bytes: int = MAX_BYTES,
                 chunk_size: int = CHUNK_SIZE, open_wait_s: float = OPEN_WAIT_S):
        self.blobs = blobs
        self.fills = fills
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        self.open_wait_s = open_wait_s

    @classmethod
    def from_registry(cls, registry: Registry, *, lease_ttl_ms: int = LEASE_TTL_MS, max_bytes: int = MAX_BYTES,
                      chunk_size: int = CHUNK_SIZE, open_wait_s: float = OPEN_WAIT_S) -> "BlobFills":
        """Fills over a ``services.Registry``'s storage and Redis."""
        index = registry.index
        return cls(registry.blobs, FillIndex(index.client, index.keys, lease_ttl_ms), max_bytes=max_bytes,
                   chunk_size=chunk_size, open_wait_s=open_wait_s)

    def serve(self, source: BlobSource, digest: str, repository: str) -> Fill:
        """The blob's body, from storage, another worker's fill, or a new one (module docstring).

        Raises:
            RegistryError(DIGEST_INVALID): a malformed digest.
            UpstreamError: the upstream refused or failed before the first byte (this fill's or the
                one this call waited for), or another worker's upstream did not answer in time.
            OSError: storage failed before the first byte (ENOSPC: ``is_storage_full``).
        """
        d = parse_digest(digest)
        stored = self._stored(d, repository)
        if stored is not None:
            return stored
        followed, deadline, delay = "", time.monotonic() + self.open_wait_s, POLL_MIN
        while True:
            state = self.fills.look(str(d))
            if state is None or state.status == "done":
                stored = self._stored(d, repository)
                if stored is not None:
                    return stored
            elif state.status == "filling" and not state.leader_gone:
                return self._follow(source, d, repository, state.token, state.size)
            elif state.status == "failed" and state.token == followed:
                raise error_from_state(source.upstream, state.error, state.reason)
            if state is None or state.status in ("done", "failed") or state.leader_gone:
                started = self._start(source, d, repository)
                if isinstance(started, Fill):
                    return started
                if started is not None:
                    return self._follow(source, d, repository, started.token, started.size)
            elif state.status == "opening":
                followed = state.token  # its upstream's first answer is ours too
            if time.monotonic() > deadline:
                raise UpstreamUnavailable(source.upstream, f"blob {d}: another worker's fetch did not start "
                                          f"in {self.open_wait_s:g} s")
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    # -- leading ------------------------------------------------------------------------------
    def _start(self, source: BlobSource, d: Digest, repository: str) -> _Started | Fill | None:
        """Take the lease and open the upstream: the fill started, the stored blob (committed since we
        looked), or None when another worker leads. Raises: UpstreamError, OSError."""
        layout = self.blobs.storage.layout
        token = uuid.uuid4().hex
        path = layout.fill_temp(d, token)
        layout.fills.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode())
        try:
            taken = self.fills.take(str(d), token)
        except BaseException:
            _discard(fd, path)
            raise
        if not taken:
            _discard(fd, path)
            return None
        try:
            stored = self._stored(d, repository)
            if stored is not None:
                self.fills.end(str(d), token, {"status": "done"})
                _discard(fd, path)
                return stored
            upstream = self._open(source, d)
        except BaseException as exc:
            _discard(fd, path)
            self._fail(d, token, exc)
            raise
        if not self.fills.update(str(d), token, {"status": "filling", "size": upstream.size}):
            upstream.close()
            _discard(fd, path)
            raise UpstreamUnavailable(source.upstream, f"blob {d}: the fill lease was lost before the first byte")
        limit = upstream.size if upstream.size is not None else self.max_bytes
        writer = FillWriter(self.blobs, self.fills, d, token, repository, upstream, fd, limit, source.upstream)
        threading.Thread(target=writer.run, name=f"blob-fill-{d.hex[:12]}", daemon=True).start()
        return _Started(token, upstream.size)

    def _open(self, source: BlobSource, d: Digest) -> UpstreamBlob:
        upstream = source.open(str(d))
        if upstream.size is not None and upstream.size > self.max_bytes:
            upstream.close()
            raise UpstreamRefused(source.upstream, f"blob {d} is {upstream.size} bytes, over the proxy's cap of "
                                  f"{self.max_bytes}")
        return upstream

    def _fail(self, d: Digest, token: str, exc: BaseException) -> None:
        """End a fill that failed before its first byte, so its followers raise the same error."""
        error = type(exc).__name__ if isinstance(exc, UpstreamError) else "UpstreamUnavailable"
        reason = exc.reason if isinstance(exc, UpstreamError) else f"the fill failed: {exc}"
        try:
            self.fills.end(str(d), token, {"status": "failed", "error": error, "reason": reason[:500]})
        except Exception:  # noqa: BLE001 - the lease then expires by itself
            self.fills.forget(str(d), token)

    # -- serving ------------------------------------------------------------------------------
    def _stored(self, d: Digest, repository: str) -> Fill | None:
        """The stored blob, linked into ``repository``, or None when it is not stored."""
        size = self._stored_size(d, repository)
        if size is None:
            return None
        chunks = self._stored_chunks(d, 0, size)
        return Fill(size, chunks, chunks.close)

    def _stored_size(self, d: Digest, repository: str) -> int | None:
        """The stored blob's size after making sure ``repository`` links it; None when it is not stored."""
        store = self.blobs.storage.blobs
        if not store.touch(d):  # touched first: a gc run racing this serve keeps it
            return None
        size = store.size(d)
        if size is not None and not self.blobs.storage.repos.has_blob(repository, d):
            self.blobs.link(repository, d)  # once: a warm pull writes nothing
        return size

    def _stored_chunks(self, d: Digest, offset: int, size: int) -> Generator[bytes, None, None]:
        """Bytes ``offset``..``size`` of the stored blob, on a filesystem or an object store."""
        handle = self.blobs.storage.blobs.open_range(d, offset, size - offset)
        if handle is None:
            raise FillAborted("storage", f"stored blob {d} vanished while being served")
        with handle:
            while offset < size:
                data = handle.read(min(self.chunk_size, size - offset))
                if not data:
                    raise FillAborted("storage", f"stored blob ended at {offset} of {size} bytes")
                offset += len(data)
                yield data

    def _follow(self, source: BlobSource, d: Digest, repository: str, token: str, size: int | None) -> Fill:
        chunks = self._stream(source, d, repository, token)
        return Fill(size, chunks, chunks.close)

    def _stream(self, source: BlobSource, d: Digest, repository: str,
                token: str) -> Generator[bytes, None, None]:
        """Follow fills of ``d`` from byte 0: the temp file as far as published, then the stored blob."""
        sent, handle, delay = 0, None, POLL_MIN
        try:
            while True:
                state = self.fills.look(str(d))
                if state is None or state.status == "done":
                    handle = _close(handle)
                    stored = self._stored_size(d, repository)
                    if stored is not None:
                        yield from self._stored_chunks(d, sent, stored)
                        return
                if state is not None and state.status == "failed":
                    raise FillAborted(source.upstream, f"blob {d}: {state.reason or 'the fill failed'}")
                if state is None or state.status == "done" or state.leader_gone:
                    token = self._take_over(source, d, repository, token)
                    handle = _close(handle)
                    continue
                if state.token != token:
                    token, handle = state.token, _close(handle)
                if handle is None:
                    handle = _open_temp(self.blobs.storage.layout.fill_temp(d, token))
                while handle is not None and sent < state.written:
                    data = os.pread(handle.fileno(), min(self.chunk_size, state.written - sent), sent)
                    if not data:
                        break
                    sent += len(data)
                    delay = POLL_MIN
                    yield data
                time.sleep(delay)
                delay = min(delay * 2, POLL_MAX)
        finally:
            _close(handle)

    def _take_over(self, source: BlobSource, d: Digest, repository: str, token: str) -> str:
        """Lead the fill of ``d`` after its leader died; the token now followed. Raises: UpstreamError."""
        started = self._start(source, d, repository)
        if isinstance(started, Fill):
            started.close()  # stored since we looked: the caller's next look reads it from storage
            return token
        if started is None:
            time.sleep(POLL_MIN)
            return token
        return started.token


def _open_temp(path) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None  # committed (renamed) or abandoned since the state was read: the next look says


def _close(handle: BinaryIO | None) -> BinaryIO | None:
    """Close ``handle`` if open; None, for the caller to forget it."""
    if handle is not None:
        handle.close()
    return None


def _discard(fd: int, path) -> None:
    os.close(fd)
    path.unlink(missing_ok=True)


__all__ = ["BlobFills", "Fill", "FillAborted"]
