"""A real blob source for the fill tests (anonymous HTTP GET with requests) and an upstream we control.

``HttpBlobSource`` GETs ``<url>/v2/<repository>/blobs/<digest>`` and maps the answer to the proxy's
upstream errors: what pt-core's client does, minus auth, failover and limits.

``FaultServer`` is a registry-shaped HTTP server (stdlib, one thread per request) serving blobs it was
given, counting GETs per digest, and misbehaving by repository name: ``ok``, ``slow`` (a chunk every
``slow_delay`` seconds), ``die`` (closes the connection half-way), ``lie`` (says a Content-Length
larger than the body, then closes), ``wrong`` (other bytes of the declared length), ``endless``
(no Content-Length, chunked, never ends), ``gone`` (404), ``late`` (404 after ``slow_delay * 10`` s).
"""
from __future__ import annotations

import collections
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from registry_ext.proxy.source import UpstreamBlob, UpstreamNotFound, UpstreamRefused, UpstreamUnavailable

SLOW_CHUNK = 16 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HttpBlobSource:
    def __init__(self, url: str, repository: str, upstream: str = "test", chunk_size: int = 64 * 1024,
                 timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.repository = repository
        self.upstream = upstream
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False

    def open(self, digest: str) -> UpstreamBlob:
        try:
            resp = self.session.get(f"{self.url}/v2/{self.repository}/blobs/{digest}", stream=True,
                                    timeout=self.timeout)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(self.upstream, f"cannot reach it: {exc}") from None
        if resp.status_code != 200:
            resp.close()
            kind = {404: UpstreamNotFound}.get(resp.status_code,
                                               UpstreamUnavailable if resp.status_code >= 500 else UpstreamRefused)
            raise kind(self.upstream, f"answered {resp.status_code}", status=resp.status_code)
        length = resp.headers.get("Content-Length")
        return UpstreamBlob(int(length) if length is not None else None, self._chunks(resp), resp.close)

    def _chunks(self, resp: requests.Response):
        try:
            yield from resp.iter_content(self.chunk_size)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(self.upstream, f"body cut: {exc}") from None


class FaultServer:
    def __init__(self, slow_delay: float = 0.05):
        self.blobs: dict[str, bytes] = {}
        self.gets: collections.Counter[str] = collections.Counter()
        self.slow_delay = slow_delay
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # clients cut us off
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "FaultServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[digest] = data
        return digest

    def count(self, digest: str) -> int:
        with self._lock:
            return self.gets[digest]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                parts = self.path.split("/")  # /v2/<mode>/blobs/<digest>
                mode, digest = parts[2], parts[-1]
                with server._lock:
                    server.gets[digest] += 1
                data = server.blobs.get(digest)
                if mode == "late":
                    time.sleep(server.slow_delay * 10)
                if data is None or mode in ("gone", "late"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                getattr(self, f"serve_{mode}")(data)

            def head(self, length: int | None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if length is None:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def serve_ok(self, data: bytes) -> None:
                self.head(len(data))
                self.wfile.write(data)

            def serve_slow(self, data: bytes) -> None:
                self.head(len(data))
                for i in range(0, len(data), SLOW_CHUNK):
                    self.wfile.write(data[i:i + SLOW_CHUNK])
                    self.wfile.flush()
                    time.sleep(server.slow_delay)

            def serve_die(self, data: bytes) -> None:
                self.head(len(data))
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                self.close_connection = True

            def serve_lie(self, data: bytes) -> None:
                self.head(len(data) + 1000)
                self.wfile.write(data)
                self.wfile.flush()
                self.close_connection = True

            def serve_wrong(self, data: bytes) -> None:
                self.head(len(data))
                self.wfile.write(bytes(len(data)))

            def serve_endless(self, data: bytes) -> None:
                self.head(None)
                try:
                    while True:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                except OSError:
                    self.close_connection = True

        return Handler
