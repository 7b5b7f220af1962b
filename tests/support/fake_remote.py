"""A tiny HTTP server in a thread that stands in for a misbehaving remote registry.

``FakeRemote(handler, host="127.0.0.1")``: ``handler(method, path, headers) -> (status, headers, body)``;
every request is recorded in ``.requests`` as (method, path, headers). Another loopback address
(``127.0.0.2``) gives a server on another origin.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRemote:
    def __init__(self, handler, host: str = "127.0.0.1"):
        self.handler = handler
        self.requests: list[tuple[str, str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                headers = dict(self.headers.items())
                fake.requests.append((self.command, self.path, headers))
                status, out_headers, body = fake.handler(self.command, self.path, headers)
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    out_headers = {"Content-Type": "application/json", **out_headers}
                body = body if isinstance(body, bytes) else str(body or "").encode()
                try:
                    self.send_response(status)
                    for key, value in out_headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_HEAD = _serve

        server_class = ThreadingHTTPServer
        if ":" in host:  # an IPv6 address
            server_class = type("ThreadingHTTPServer6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        self.server = server_class((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _h in self.requests if method in (None, m)]


def oci_error(code: str, status: int = 404):
    return status, {"Content-Type": "application/json"}, {"errors": [{"code": code, "message": code.lower()}]}


class SilentRemote:
    """A remote that accepts every connection and never answers (or, with ``trickle``, answers a 200
    whose body arrives one byte every ``trickle`` seconds, for ever). ``.accepted`` counts connections."""

    def __init__(self, trickle: float | None = None):
        import socket

        self.trickle = trickle
        self.accepted = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._held: list = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._held.append(conn)
            if self.trickle is not None:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
            while not self._stop.wait(self.trickle):
                conn.sendall(b" ")
        except OSError:
            pass
