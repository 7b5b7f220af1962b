"""``registry-ext feed-waiter``: holds the update feed's long-polls for the workers behind nginx.

A worker that finds nothing new for a long-poll answers
``X-Accel-Redirect: <feed.wait_offload>/?t=<token>``; nginx keeps the
client's connection and proxies this internal request here. The token
(signed by the worker, services/feed_codec.py) says what to wait for: the
filter (or a stored watch list), the position the worker scanned to, the
cursor it would have answered, the page size and the deadline.

The answer is one of:

- an event arrived and the caller may see everything the filter picks
  (no access control narrowed it: mode ``direct``): the page, built from
  the hub's ring with the same bytes, Link and ETag a worker would send;
- an event arrived in ``resume`` mode, or the hub cannot vouch for the
  gap since the worker's scan: ``X-Accel-Redirect`` back to the worker's
  URL (with the remaining wait and a hop count), where access control
  and the cursor checks run again;
- the deadline passed: the empty page with the worker's cursor (or 304).

Each waiting client costs a coroutine and two sockets in nginx, no thread
and no Redis connection (measured in docs/benchmarks.md).
"""
from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from registry_ext.config import Settings
from registry_ext.index.feed_tail import AsyncFeedTail
from registry_ext.oci import repo_filter
from registry_ext.oci.repo_filter import RepoFilter, RepoFilterError
from registry_ext.services import feed_page
from registry_ext.services.feed_codec import Position, encode_cursor, verify_token
from registry_ext.services.feed_wait import id_key
from registry_ext.services.storage_setup import configured_identity
from registry_ext.storage.identity import Identity
from registry_ext.waiter.hub import Hub, Waiter

log = logging.getLogger(__name__)

HEAD_MAX = 65536
_WATCHES = 1024


class WaiterServer:
    def __init__(self, settings: Settings, identity: Identity | None = None):
        self.settings = settings
        self.identity = identity
        self.tail = AsyncFeedTail(settings.redis.url, settings.redis.key_prefix)
        self.hub = Hub(self.tail)
        self.watches: dict[str, RepoFilter] = {}
        self._pages: dict = {}
        self._pages_at = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status, headers, body = await self.respond(head, reader)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.close()
            return
        except Exception:  # noqa: BLE001 - one bad request must not stop the waiter
            log.exception("feed waiter request failed")
            status, headers, body = _error(500, "waiter error")
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close",
                 "Docker-Distribution-API-Version: registry/2.0", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def respond(self, head: bytes, reader: asyncio.StreamReader) -> tuple[str, dict, bytes]:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else ""
        token = (parse_qs(urlsplit(target).query).get("t") or [""])[0]
        if self.identity is None:
            self.identity = await _identity(self.settings)
        doc = verify_token(self.identity, token)
        if doc is None:
            return _error(400, "invalid or expired long-poll token")
        flt = await self._filter(doc["f"])
        if flt is None:
            return self._resume(doc)
        epoch, entry_id, _n = doc["p"]
        after = id_key(entry_id)
        if not self.hub.ready.is_set():
            await asyncio.wait_for(self.hub.ready.wait(), 5)
        if not self.hub.vouches(epoch, after):
            return self._resume(doc)
        if not self.hub.matches_after(flt, after):
            waiter = Waiter(flt, after)
            self.hub.add(waiter)
            gone = asyncio.ensure_future(reader.read(1))  # nginx closes when the client goes away
            woken = asyncio.ensure_future(waiter.woken.wait())
            try:
                done, _ = await asyncio.wait({gone, woken}, timeout=max(doc["d"] - time.time(), 0),
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.hub.remove(waiter)
                gone.cancel()
                woken.cancel()
            if gone in done:
                raise ConnectionError("client went away")
            if woken not in done or waiter.closing:
                return self._page(doc, [], doc["c"], False, headers)
            if waiter.lost or not self.hub.vouches(epoch, after):
                return self._resume(doc)
        if doc["m"] != "direct":
            return self._resume(doc)
        events, cursor, more = self._direct_page(self.identity, doc, flt, epoch, after)
        return self._page(doc, events, cursor, more, headers)

    def _direct_page(self, identity: Identity, doc: dict, flt: RepoFilter, epoch: str, after: tuple[int, int]):
        """The page for the ring as it is; computed once for all waiters woken with the same question
        (a popular repository moving wakes many at the same position)."""
        if self._pages_at != self.hub.position:
            self._pages, self._pages_at = {}, self.hub.position
        key = (orjson.dumps(doc["f"], option=orjson.OPT_SORT_KEYS), after, doc["n"], epoch, doc["c"])
        if key not in self._pages:
            events, last, more = self.hub.page(flt, after, doc["n"])
            cursor = encode_cursor(identity, Position(epoch, last.id, last.n)) if last else doc["c"]
            self._pages[key] = (events, cursor, more)
        return self._pages[key]

    async def _filter(self, spec: dict) -> RepoFilter | None:
        """The token's filter; a watch list is read from Redis (None: gone, let the worker say so)."""
        if "watch" not in spec:
            return repo_filter.from_spec(spec)
        watch_id = spec["watch"]
        if watch_id not in self.watches:
            raw = await self.tail.watch(watch_id, self.settings.feed.watch_ttl_seconds)
            if raw is None:
                return None
            try:
                flt = repo_filter.from_spec(orjson.loads(raw))
            except (RepoFilterError, ValueError):
                return None
            if len(self.watches) >= _WATCHES:
                self.watches.pop(next(iter(self.watches)))
            self.watches[watch_id] = flt
        return self.watches[watch_id]

    def _page(self, doc: dict, events: list[str], cursor: str, more: bool, headers: dict) -> tuple[str, dict, bytes]:
        data = feed_page.body(events, cursor, more)
        link = feed_page.link([tuple(pair) for pair in doc["q"]], cursor)
        tag = feed_page.etag(data, link)
        out = {"Link": link, "ETag": f'"{tag}"', "Cache-Control": "private, no-cache"}
        if "x-request-id" in headers:
            out["X-Request-ID"] = headers["x-request-id"]
        if feed_page.not_modified(headers.get("if-none-match"), tag):
            return "304 Not Modified", out, b""
        out["Content-Type"] = "application/json"
        return "200 OK", out, data

    def _resume(self, doc: dict) -> tuple[str, dict, bytes]:
        """Send the request back to a worker (nginx follows X-Accel-Redirect), with what is left of the wait."""
        query = [tuple(pair) for pair in doc["q"]] + [("cursor", doc["c"]), ("_hop", str(doc["h"])),
                                                      ("_until", str(int(doc["d"])))]
        return "200 OK", {"X-Accel-Redirect": f"{feed_page.PATH}?{urlencode(query)}"}, b""


def _error(status: int, message: str) -> tuple[str, dict, bytes]:
    body = orjson.dumps({"errors": [{"code": "UNSUPPORTED", "message": message}]})
    return f"{status} {'Bad Request' if status == 400 else 'Internal Server Error'}", \
        {"Content-Type": "application/json"}, body


async def serve(settings: Settings) -> None:
    """Listen on ``feed.waiter_listen`` and follow the feed until cancelled."""
    server_state = WaiterServer(settings)
    listen = settings.feed.waiter_listen
    if listen.startswith("unix:"):
        server = await asyncio.start_unix_server(server_state.handle, path=listen[5:], limit=HEAD_MAX,
                                                 backlog=4096)
    else:
        host, _, port = listen.rpartition(":")
        server = await asyncio.start_server(server_state.handle, host.strip("[]"), int(port), limit=HEAD_MAX,
                                            backlog=4096)
    log.warning("feed waiter listening on %s", listen)
    tail = asyncio.ensure_future(server_state.hub.run())
    serving = asyncio.ensure_future(server.serve_forever())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(_stop(server_state, server, serving)))
    try:
        await serving
    except asyncio.CancelledError:
        pass
    finally:
        tail.cancel()
        await server_state.tail.close()


async def _stop(state: WaiterServer, server: asyncio.AbstractServer, serving: asyncio.Future) -> None:
    """SIGTERM: stop accepting, answer every waiting poll (empty page: clients poll again), then exit."""
    log.warning("feed waiter stopping: answering %d waiting polls", state.hub.waiting)
    server.close()
    state.hub.close_all()
    await asyncio.sleep(0.5)
    serving.cancel()


async def _identity(settings: Settings) -> Identity:
    """The registry's identity, made by the first worker (storage may be read-only here). A token
    can only reach this process after a worker signed it, so the file exists by then."""
    for _ in range(50):
        try:
            return configured_identity(settings, create=False)
        except FileNotFoundError:
            await asyncio.sleep(0.1)
    return configured_identity(settings, create=False)


def raise_file_limit() -> int:
    """Each waiting client holds a socket: raise the open-file limit to its hard maximum."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s feed-waiter %(levelname)s %(message)s")
    raise_file_limit()
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
