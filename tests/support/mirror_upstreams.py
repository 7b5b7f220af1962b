"""Real upstreams for the pull-through mirror tests.

- ``start_upstreams(n)``: ``n`` Debian ``docker-registry`` instances (bench/peer.py), each seeded
  with a *different* image under the *same* name (``library/app:latest``), so a mirror that mixes
  them up serves the wrong bytes.
- ``Front``: an HTTP server in front of one upstream that forwards everything, records what it
  receives (method, path, headers), and can be told to answer 429 with a ``Retry-After``, or to
  change the bytes of manifest or blob bodies (a lying upstream: the Docker-Content-Digest is kept).
- ``Recorder``: a server that only records what it receives (a token realm the mirror must not
  send credentials to) and answers ``{"token": "not-a-token"}``.
- ``serve_app``: one of our registries (a Flask app) on a loopback port, as an upstream with
  token auth.
"""
from __future__ import annotations

import dataclasses
import gzip
import http.server
import json
import threading
import time

import requests
from werkzeug.serving import make_server

from bench.peer import Server, start_peer
from registry_ext import create_app
from registry_ext.config import Settings, replace
from tests.support.flask_client import BufferedClient
from tests.support.e2e_mirror_seed import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Pusher, digest
from tests.support.servers import free_port

REPO = "library/app"


@dataclasses.dataclass
class Image:
    manifest: bytes
    media_type: str
    config: bytes
    layer: bytes

    @property
    def digest(self) -> str:
        return digest(self.manifest)


def make_image(label: str) -> Image:
    """An OCI image whose config, layer and manifest all depend on ``label``."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"upstream": label}}}).encode()
    layer = gzip.compress(f"layer of {label}\n".encode() * 64, mtime=0)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
           "layers": [{"mediaType": OCI_LAYER, "digest": digest(layer), "size": len(layer)}],
           "annotations": {"test.label": label}}
    return Image(json.dumps(doc).encode(), OCI_MANIFEST, config, layer)


def push(url: str, repo: str, tag: str | None, image: Image) -> str:
    """Push ``image`` (blobs, then the manifest, by tag or digest) to the registry at ``url``."""
    pusher = Pusher(url)
    pusher.blob(repo, image.config)
    pusher.blob(repo, image.layer)
    return pusher.manifest(repo, tag, (image.manifest, image.media_type))


@dataclasses.dataclass
class Upstream:
    server: Server
    label: str
    image: Image

    @property
    def url(self) -> str:
        return self.server.url


def start_upstreams(count: int, repo: str = REPO, prefix: str = "up") -> list[Upstream]:
    """``count`` docker-registry instances, each holding its own ``<repo>:latest`` (label ``<prefix><i>``)."""
    started: list[Upstream] = []
    try:
        for i in range(count):
            label = f"{prefix}{i}"
            upstream = Upstream(start_peer(), label, make_image(label))
            started.append(upstream)
            push(upstream.url, repo, "latest", upstream.image)
    except BaseException:
        for upstream in started:
            upstream.server.stop()
        raise
    return started


class _Threaded:
    """A ThreadingHTTPServer on a free loopback port, in a daemon thread."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder(_Threaded):
    """Records every request (method, path, headers) and answers a useless token."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                recorder.seen.append((self.command, self.path, dict(self.headers)))
                body = b'{"token": "not-a-token"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)


class Front(_Threaded):
    """Forwards to ``target``; ``mode``: "pass", "429" (with ``retry_after``), "slow" (answers after
    ``delay`` seconds), "corrupt" (manifest GETs: one more space, still JSON) or "corrupt-blobs" (blob
    GETs: the first byte changed, same length)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.mode = "pass"
        self.retry_after = "30"
        self.delay = 3.0
        self.seen: list[tuple[str, str]] = []
        self.session = requests.Session()
        self.session.trust_env = False
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                front.seen.append((self.command, self.path))
                if front.mode == "slow":
                    time.sleep(front.delay)
                if front.mode == "429":
                    self._answer(429, {"Retry-After": front.retry_after, "Content-Type": "application/json"},
                                 b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                try:
                    got = front.session.request(self.command, front.target + self.path, headers=headers,
                                                allow_redirects=False, timeout=30)
                except requests.RequestException:  # the upstream went away (a test stopped it)
                    self._answer(502, {}, b"")
                    return
                body = got.content
                if front.mode == "corrupt" and "/manifests/" in self.path and self.command == "GET" and body:
                    body = body[:-1] + b" " + body[-1:]  # still JSON, other bytes
                if front.mode == "corrupt-blobs" and "/blobs/" in self.path and self.command == "GET" and body:
                    body = bytes([body[0] ^ 1]) + body[1:]  # same length, other bytes
                keep = {k: v for k, v in got.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
                self._answer(got.status_code, keep, b"" if self.command == "HEAD" else body,
                             length=got.headers.get("Content-Length") if self.command == "HEAD" else None)

            def _answer(self, status: int, headers: dict, body: bytes, length: str | None = None) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", length or str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = _forward  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        super().__init__(Handler)


class AppServer:
    """A Flask app of ours served on a loopback port (werkzeug, threaded), as an upstream."""

    def __init__(self, app) -> None:
        port = free_port()
        self.httpd = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def mirror_app(settings: Settings, upstreams: dict, **mirror_diff):
    """The app with ``[proxy] upstreams`` (and ``[mirror]`` keys, if any), its test client buffering
    streamed bodies (the blob fill streams)."""
    if mirror_diff:
        settings = replace(settings, "mirror", **mirror_diff)
    app = create_app(replace(settings, "proxy", upstreams=upstreams))
    app.test_client_class = BufferedClient
    return app
