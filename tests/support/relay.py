"""A tiny stdlib HTTP relay in front of a real registry: counts requests, answers 429, paces bytes.

The mirror's upstream is a real ``docker-registry``; the relay stands between them to see and shape
what the mirror asks for, never to answer in the registry's place (except an injected 429):

- ``counts[(method, path)]``: requests seen (the query string dropped), so a test can say "exactly one
  upstream GET of this blob";
- ``limit_429(pattern, times, retry_after)``: the next ``times`` requests whose path matches the regex
  get ``429 Too Many Requests`` with ``Retry-After``; ``times_of(pattern)`` lists when each request came;
- ``rate``: bytes per second per response body (a real link; the fault tests slow a blob down so it
  can be cut in the middle);
- ``forwarded(path)``: body bytes relayed so far for a path (a test waits for some, then kills the
  upstream or a worker).

When the upstream dies mid-body the relay closes the client's connection at once (the client sees a
body shorter than its Content-Length), as a dead upstream would.

In-process: ``with Relay(target_url) as relay: relay.url``. As a process (bench/, away from the
client's GIL): ``python -m tests.support.relay --target URL --port P [--rate BYTES]``; then
``GET /_relay/counts`` answers the counts as JSON.
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CHUNK = 1 << 16
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-connection", "host"}


class Relay:
    """A threaded relay to one ``http://host:port`` target on a free loopback port."""

    def __init__(self, target: str, *, port: int = 0, rate: float = 0.0):
        parts = urlsplit(target)
        assert parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"), target
        self.target = (parts.hostname, parts.port or 80)
        self.rate = rate
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {}
        self.arrivals: list[tuple[float, str, str]] = []
        self._forwarded: dict[str, int] = {}
        self._rules: list[list] = []  # [compiled pattern, remaining, retry_after]
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # -- what tests set and read ---------------------------------------------------------------
    def limit_429(self, pattern: str, times: int, retry_after: int) -> None:
        with self.lock:
            self._rules.append([re.compile(pattern), times, retry_after])

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return self.counts.get((method, path), 0)

    def times_of(self, pattern: str) -> list[float]:
        rx = re.compile(pattern)
        with self.lock:
            return [t for t, _, p in self.arrivals if rx.search(p)]

    def forwarded(self, path: str) -> int:
        with self.lock:
            return self._forwarded.get(path, 0)

    def wait_forwarded(self, path: str, at_least: int, timeout: float = 30.0) -> int:
        """Block until ``at_least`` body bytes of ``path`` went through (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.forwarded(path)
            if done >= at_least:
                return done
            time.sleep(0.01)
        raise AssertionError(f"relay: only {self.forwarded(path)} of {at_least} bytes of {path} in {timeout}s")

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Relay:
        self._thread = threading.Thread(target=self.server.serve_forever, name="relay", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- used by the handler -----------------------------------------------------------------------
    def _arrive(self, method: str, path: str) -> int | None:
        """Count a request; the Retry-After to answer with when a 429 rule takes it, else None."""
        with self.lock:
            self.counts[(method, path)] = self.counts.get((method, path), 0) + 1
            self.arrivals.append((time.monotonic(), method, path))
            for rule in self._rules:
                if rule[1] > 0 and rule[0].search(path):
                    rule[1] -= 1
                    return rule[2]
        return None

    def _add_forwarded(self, path: str, n: int) -> None:
        with self.lock:
            self._forwarded[path] = self._forwarded.get(path, 0) + n


def _handler_for(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the counts are the log
            pass

        def _relay(self) -> None:
            path = urlsplit(self.path).path
            if path == "/_relay/counts":
                return self._counts()
            retry_after = relay._arrive(self.command, path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if retry_after is not None:
                return self._too_many(retry_after)
            conn = http.client.HTTPConnection(*relay.target, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                headers["Host"] = f"{relay.target[0]}:{relay.target[1]}"
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            except OSError:
                self.close_connection = True
                return self._status(502, b"relay: upstream unreachable\n")
            try:
                self._copy(resp, path)
            finally:
                conn.close()

        def _copy(self, resp: http.client.HTTPResponse, path: str) -> None:
            self.send_response_only(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            expected = resp.getheader("Content-Length")
            if expected is None and self.command != "HEAD" and resp.status not in (204, 304):
                self.send_header("Connection", "close")  # unknown length: the end is the close
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            sent, started = 0, time.monotonic()
            while True:
                try:
                    piece = resp.read1(CHUNK)
                except OSError:
                    piece = b""
                if not piece:
                    break
                self.wfile.write(piece)
                sent += len(piece)
                relay._add_forwarded(path, len(piece))
                if relay.rate:
                    ahead = sent / relay.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            if expected is not None and sent < int(expected):
                self.close_connection = True  # the upstream died mid-body: so does this answer

        def _too_many(self, retry_after: int) -> None:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"relay: slow down"}]}'
            self.send_response_only(429, "Too Many Requests")
            self.send_header("Retry-After", str(retry_after))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _status(self, status: int, body: bytes) -> None:
            self.send_response_only(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _counts(self) -> None:
            with relay.lock:
                data = json.dumps([{"method": m, "path": p, "count": c}
                                   for (m, p), c in sorted(relay.counts.items())]).encode()
            self.send_response_only(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    return Handler


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="http://127.0.0.1:PORT of the registry behind the relay")
    ap.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    ap.add_argument("--rate", type=float, default=0.0, help="bytes per second per response body (0: unpaced)")
    args = ap.parse_args(argv)
    relay = Relay(args.target, port=args.port, rate=args.rate)
    print(f"relay {relay.url} -> {args.target}", flush=True)
    try:
        relay.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
