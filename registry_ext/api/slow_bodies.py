"""A minimum rate for upload bodies, and a pause for the clients that fell below it.

Behind nginx an upload's body streams to gunicorn as it arrives
(``proxy_request_buffering off``), so every upload holds a request thread
until its last byte, and nginx caps uploads in progress (12 in all, 8 per
address). nginx's ``client_body_timeout`` only limits the pause between two
reads: a client sending one byte every 2 s is never cut, and 12 of them
from 3 addresses held the cap so every other push got 429 for as long as
they liked. Here each body must deliver ``limits.upload_min_rate_bytes``
within every ``limits.upload_min_rate_seconds`` (64 KiB per 20 s by
default, 3.2 KiB/s): the body is read in pieces of that size, and a watcher
thread per worker shuts the reading side of the socket of any request still
waiting for its piece after the window, which ends the blocked read. The
request then answers 408 (``BLOB_UPLOAD_INVALID``), the bytes of the
unfinished chunk are dropped (the session keeps its offset: the client may
resume), and the client's address gets ``429 TOOMANYREQUESTS`` for every
upload request during ``limits.upload_slow_penalty_seconds``, answered
before any body is read, so its retries cannot take the freed slots back.
The pause is kept in Redis (index/pauses.py), so every worker refuses it.

Needs gunicorn (the ``gunicorn.socket`` of the WSGI environ); under another
server the rate is not enforced.
"""
from __future__ import annotations

import fcntl
import math
import socket
import ssl
import sys
import termios
import threading
import time
from typing import BinaryIO

from registry_ext.config import LimitSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.services.blobs import UploadService


class BodyWatch:
    """One per app (worker process): the pieces being awaited, and a thread that cuts late ones."""

    def __init__(self, limits: LimitSettings, uploads: UploadService):
        self.piece = limits.upload_min_rate_bytes
        self.window = limits.upload_min_rate_seconds
        self.penalty = limits.upload_slow_penalty_seconds
        self.uploads = uploads
        self._lock = threading.Lock()
        self._waiting: set[GuardedBody] = set()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.piece > 0

    def admit(self, client: str) -> None:
        """Raises: RegistryError(TOOMANYREQUESTS) while ``client`` is paused for a slow upload."""
        left = self.uploads.client_paused_for(client) if self.enabled else 0
        if left > 0:
            wait = math.ceil(left)
            raise RegistryError(ErrorCode.TOOMANYREQUESTS, {"reason": "slow upload", "retry_after": wait},
                                message=f"an upload from this address was slower than {self.piece} bytes in "
                                        f"{self.window} s; uploads are refused for a while",
                                headers={"Retry-After": str(wait)})

    def guard(self, stream: BinaryIO, sock: socket.socket | None, client: str) -> BinaryIO | GuardedBody:
        """``stream`` read under the minimum rate (as is without a socket to cut, or when disabled)."""
        if not self.enabled or sock is None:
            return stream
        self._start()
        return GuardedBody(self, stream, sock, client)

    def _start(self) -> None:
        """The watcher thread, started in the worker process on first use (never before a fork)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="slow-bodies", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        step = min(1.0, self.window / 4)
        while True:
            time.sleep(step)
            now = time.monotonic()
            with self._lock:
                late = [body for body in self._waiting if body.deadline <= now]
            for body in late:
                self._cut(body)

    def _cut(self, body: "GuardedBody") -> None:
        with self._lock:
            self._waiting.discard(body)
        body.cut = True
        self.uploads.pause_client(body.client, self.penalty)
        try:
            body.sock.shutdown(socket.SHUT_RD)  # the blocked recv returns: the read ends
        except OSError:
            pass

    def waiting(self, body: "GuardedBody", deadline: float | None) -> None:
        with self._lock:
            if deadline is None:
                self._waiting.discard(body)
            else:
                body.deadline = deadline
                self._waiting.add(body)


class GuardedBody:
    """A request body read in pieces, each of which must arrive within the window."""

    def __init__(self, watch: BodyWatch, stream: BinaryIO, sock: socket.socket, client: str):
        self.watch, self.stream, self.sock, self.client = watch, stream, sock, client
        self.deadline = 0.0
        self.cut = False

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes and at most one piece (b"" only at the end of the body), all when negative.

        One piece per call, as a raw stream may: joining pieces into the
        caller's larger buffer cost more than the copy itself (the upload
        loop, storage/uploads._copy, takes short reads).

        Raises:
            RegistryError(BLOB_UPLOAD_INVALID, 408): the body fell below the minimum rate.
        """
        if size is None or size < 0:
            return b"".join(iter(lambda: self._piece(self.watch.piece), b""))
        return self._piece(min(size, max(self.watch.piece, self._arrived()))) if size else b""

    def _arrived(self) -> int:
        """Bytes already waiting in the socket's receive queue (0 when unknown, or under TLS).

        Reading that many cannot block (gunicorn's own buffer only adds to
        them), so a fast client's body is read in pieces of up to the caller's
        size (1 MiB) with the window unchanged; only the bytes still to come
        are held to ``piece`` per window. 64 KiB reads cost 7 ms of CPU per
        MiB: gunicorn reads ahead 1 MiB and copies the rest of its buffer on
        every short read (bench/blob_io.py). A chunked body's queue also holds
        its framing, so such a read may wait for a few more bytes: far fewer
        than the ``piece`` a client keeping the rate sends within the window.
        """
        if isinstance(self.sock, ssl.SSLSocket):  # the queue holds ciphertext
            return 0
        try:
            raw = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):
            return 0
        return int.from_bytes(raw, sys.byteorder, signed=True)

    def _piece(self, size: int) -> bytes:
        """One read of up to ``size`` bytes, which must end within the window."""
        self.watch.waiting(self, time.monotonic() + self.watch.window)
        try:
            data = self.stream.read(size)
        except Exception:
            if self.cut:
                raise self._too_slow() from None
            raise
        finally:
            self.watch.waiting(self, None)
        if self.cut:
            raise self._too_slow()
        return data

    def _too_slow(self) -> RegistryError:
        watch = self.watch
        return RegistryError(ErrorCode.BLOB_UPLOAD_INVALID,
                             {"reason": "slow body", "min_bytes": watch.piece, "seconds": watch.window},
                             status=408, message=f"upload body slower than {watch.piece} bytes in {watch.window} s; "
                                                 "the unfinished chunk was dropped, resume from the upload's offset")
