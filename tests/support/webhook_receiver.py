"""A real HTTP server receiving webhooks for the tests, scripted to fail, hang, redirect or recover."""
from __future__ import annotations

import dataclasses
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    answered: str
    at: float


class Receiver:
    """``script`` is consumed one answer per request: "200", "500", "302", "hang" (no answer for
    ``hang_seconds``, then 200); when empty, ``default`` is used."""

    def __init__(self, default: str = "200", hang_seconds: float = 3.0, port: int = 0):
        self.script: list[str] = []
        self.default = default
        self.hang_seconds = hang_seconds
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, answer, time.monotonic()))
                if answer == "hang":
                    time.sleep(receiver.hang_seconds)
                    answer = "200"
                status = int(answer)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                try:
                    self.wfile.write(b"ok")
                except BrokenPipeError:  # the registry gave up waiting (a hang longer than its timeout)
                    pass

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.received)}: {self.received}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
