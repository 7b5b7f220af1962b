"""Slow upload clients: chunked PATCH bodies that trickle a few bytes at a time, on raw sockets.

``SlowUploads`` opens each PATCH from a chosen loopback source address
(127.0.0.x: distinct client addresses for nginx's per-client limit), then a
background thread sends a small chunk on every open one every ``interval``
seconds and collects any answer that arrives early (nginx's 429). Nothing
ever finishes a body: ``close()`` drops every connection, as a client that
gives up would.
"""
from __future__ import annotations

import dataclasses
import selectors
import socket
import threading
import time


@dataclasses.dataclass
class SlowUpload:
    source: str
    sock: socket.socket
    answer: bytes = b""
    sent: int = 0
    closed: bool = False  # the server closed the connection

    @property
    def answered(self) -> bool:
        """Headers and the whole Content-Length body arrived (or the server closed the connection)."""
        head, sep, body = self.answer.partition(b"\r\n\r\n")
        if not sep:
            return self.closed
        for line in head.split(b"\r\n")[1:]:
            name, _c, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(body) >= int(value)
        return True

    @property
    def status(self) -> int | None:
        parts = self.answer.split(b" ", 2)
        return int(parts[1]) if self.answered and len(parts) > 1 else None

    @property
    def body(self) -> bytes:
        return self.answer.split(b"\r\n\r\n", 1)[1] if self.answered else b""


class SlowUploads:
    def __init__(self, host: str, port: int, interval: float = 0.5, chunk: bytes = b"slow"):
        self.host, self.port, self.interval, self.chunk = host, port, interval, chunk
        self.uploads: list[SlowUpload] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._trickle, name="slow-uploads", daemon=True)

    def open(self, path: str, source: str) -> SlowUpload:
        """Send the headers of a chunked PATCH to ``path`` from ``source`` and the first chunk."""
        sock = socket.create_connection((self.host, self.port), timeout=10, source_address=(source, 0))
        sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        upload = SlowUpload(source, sock)
        self._send(upload)
        with self._lock:
            self.uploads.append(upload)
        if not self._thread.is_alive():
            self._thread.start()
        return upload

    def _send(self, upload: SlowUpload) -> None:
        try:
            upload.sock.sendall(b"%x\r\n%s\r\n" % (len(self.chunk), self.chunk))
            upload.sent += len(self.chunk)
        except OSError:
            pass  # answered and closed by the server: the answer is read below

    def _trickle(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                pending = [u for u in self.uploads if not u.answered]
            readable = _readable([u.sock for u in pending], self.interval) if pending else []
            for upload in pending:
                if upload.sock in readable:
                    self._read(upload)
                elif not self._stop.is_set():
                    self._send(upload)
            if not pending:
                time.sleep(self.interval)

    @staticmethod
    def _read(upload: SlowUpload) -> None:
        try:
            data = upload.sock.recv(65536)
        except OSError:
            data = b""
        upload.answer += data
        upload.closed = not data

    def wait_answered(self, count: int, timeout: float) -> list[SlowUpload]:
        """Wait until at least ``count`` uploads got an answer; return those answered."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                answered = [u for u in self.uploads if u.answered]
            if len(answered) >= count or time.monotonic() > deadline:
                return answered
            time.sleep(0.05)

    def in_progress(self) -> list[SlowUpload]:
        with self._lock:
            return [u for u in self.uploads if not u.answered]

    def close(self) -> None:
        """Stop trickling and drop every connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            for upload in self.uploads:
                upload.sock.close()


def _readable(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """The sockets with something to read, waiting up to ``timeout`` (epoll: any descriptor number)."""
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        return [key.fileobj for key, _events in sel.select(timeout=timeout)]


class HeaderFlood:
    """``count`` connections from ``source`` that send part of a request header and never finish it.

    A background thread keeps ``count`` open: whenever the server closes one (its header timeout), it is
    replaced at once, as a persistent attacker would. ``closed_by_server`` counts those closures and
    ``lifetimes`` how long each closed one had lived.
    """

    def __init__(self, host: str, port: int, source: str, count: int):
        self.host, self.port, self.source, self.count = host, port, source, count
        self.open: dict[socket.socket, float] = {}
        self.closed_by_server = 0
        self.lifetimes: list[float] = []
        self.refused = 0  # connects that failed (the server out of connections, the backlog full)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="header-flood", daemon=True)

    def start(self) -> "HeaderFlood":
        self._fill()
        self._thread.start()
        return self

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2, source_address=(self.source, 0))
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Never-Ending: a")
        except OSError:
            self.refused += 1
            return
        self.open[sock] = time.monotonic()

    def _fill(self) -> None:
        while len(self.open) < self.count and not self._stop.is_set():
            self._connect()

    def _run(self) -> None:
        while not self._stop.is_set():
            for sock in self._closed(list(self.open)):
                self.lifetimes.append(time.monotonic() - self.open.pop(sock))
                self.closed_by_server += 1
                sock.close()
            self._fill()
            self._stop.wait(0.2)

    @staticmethod
    def _closed(socks: list[socket.socket]) -> list[socket.socket]:
        """Sockets whose peer closed (readable with EOF or a reset), by epoll: no select() 1024 limit."""
        found = []
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, selectors.EVENT_READ)
            for key, _events in sel.select(timeout=0):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    found.append(sock)
        return found

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for sock in self.open:
            sock.close()
        self.open.clear()
