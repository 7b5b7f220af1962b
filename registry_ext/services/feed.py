"""The update feed: what changed in which repositories since a cursor (docs/updates.md).

Writes: the index transaction of a tag change stages the event in the
repository's outbox (index/writer.py); ``index.feed.publish`` then copies
it to the global stream, under the repository lock the write already
holds (services/manifests.py). A write that dies before publishing leaves
its journal entry, whose replay publishes (services/reconcile.py). So
every index change of a tag is in the feed once, in the repository's order.

Reads: ``start`` gives the current cursor (and recent events, for a
client without a cursor); ``after`` the events after a cursor that pass
the filter and the caller's pull permission, scanning at most
``feed.scan_max`` entries. Cursors are checked against the stream: one
whose entry was trimmed or lost, or of an older epoch, gets 410 with a
fresh cursor, never a silent skip.
"""
from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from typing import Callable

import orjson

from registry_ext.config import FeedSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index.feed import Entry, FeedStore
from registry_ext.oci import repo_filter
from registry_ext.oci.repo_filter import RepoFilter
from registry_ext.services.feed_codec import CursorError, Position, decode_cursor, encode_cursor
from registry_ext.storage.identity import Identity

MayPull = Callable[[str], bool]
BATCH = 1000  # stream entries per read
_WATCH_CACHE = 1024


def allow_all(_name: str) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Page:
    events: list[str]   # event JSON, oldest first
    next: str           # the cursor to send next
    more: bool          # entries remain unexamined: poll again at once
    position: Position  # where the scan stopped (waiters wait for entries after it)


class FeedService:
    def __init__(self, store: FeedStore, settings: FeedSettings, identity: Identity):
        self.store = store
        self.settings = settings
        self.identity = identity
        self._watches: dict[str, tuple[RepoFilter, float]] = {}
        self._watch_lock = threading.Lock()

    # -- reads -------------------------------------------------------------------------------
    def start(self, flt: RepoFilter, recent: int, may_pull: MayPull = allow_all) -> Page:
        """The current cursor, and the last ``recent`` events of each named repository (plus the
        newest ``recent`` matching events of the prefix or glob, from the stream).

        Raises:
            RegistryError(UNSUPPORTED, 503): the feed is being rebuilt.
        """
        names = sorted(flt.names) if flt.names else []
        epoch, last, heads = self.store.start(names if recent else [])
        if epoch is None or last is None:
            raise feed_building()
        position = Position(epoch, last.id, last.n)
        events: list[str] = []
        if recent:
            wanted = [(name, head) for name, head in zip(names, heads) if head and may_pull(name)]
            for found in self.store.recent(wanted, recent):
                events += found
            if flt.prefix or flt.glob or flt.everything:
                events += self._recent_matching(flt, last, recent, may_pull)
            events.sort(key=_time_and_repository)
        return Page(events, encode_cursor(self.identity, position), False, position)

    def after(self, flt: RepoFilter, cursor: str, n: int, may_pull: MayPull = allow_all) -> Page:
        """Up to ``n`` events after ``cursor`` that pass the filter, oldest first.

        Raises:
            RegistryError(UNSUPPORTED, 400): the cursor is malformed, altered or another registry's.
            RegistryError(UNSUPPORTED, 410): the cursor's entry left the feed (retention, rebuild,
                a Redis that lost data); ``detail.cursor`` is a fresh one.
            RegistryError(UNSUPPORTED, 503): the feed is being rebuilt.
        """
        position = self.decode(cursor)
        events: list[str] = []
        scanned, exhausted = 0, False
        while len(events) < n and scanned < self.settings.scan_max and not exhausted:
            count = min(BATCH, self.settings.scan_max - scanned)
            result = self.store.read_after(position.epoch, position.id, position.n, count)
            if result.status != "ok":
                raise self._stale(result, position)
            exhausted = len(result.entries) < count
            for entry in result.entries:
                scanned += 1
                position = Position(position.epoch, entry.id, entry.n)
                if entry.repo and flt.matches(entry.repo) and may_pull(entry.repo):
                    events.append(entry.data)
                    if len(events) == n:
                        exhausted = exhausted and entry is result.entries[-1]
                        break
        return Page(events, encode_cursor(self.identity, position), not exhausted, position)

    def decode(self, cursor: str) -> Position:
        """Raises: RegistryError(UNSUPPORTED, 400) for a cursor this registry did not issue."""
        try:
            return decode_cursor(self.identity, cursor)
        except CursorError as exc:
            raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "cursor", "reason": exc.reason},
                                message=f"{exc}: start again without a cursor") from None

    def _stale(self, result, position: Position) -> RegistryError:
        if result.status == "building" or result.last is None:
            return feed_building()
        fresh = encode_cursor(self.identity, Position(result.epoch, result.last.id, result.last.n))
        if result.status == "epoch":
            why = "the feed was rebuilt (Redis lost its data)"
        elif result.first is not None and result.first.n > position.n:
            why = "events after it are older than the feed's retention"
        else:
            why = "the feed lost events after it (Redis restarted without them)"
        return RegistryError(
            ErrorCode.UNSUPPORTED, {"reason": "cursor-expired", "cursor": fresh, "why": why}, status=410,
            message=f"cursor expired: {why}; resync through the listings, then continue with detail.cursor")

    def _recent_matching(self, flt: RepoFilter, last: Entry, count: int, may_pull: MayPull) -> list[str]:
        """The newest ``count`` events up to ``last`` of repositories the prefix or glob picks
        (the named ones are answered from their own streams)."""
        pattern = flt if flt.everything else flt.patterns_only()
        named = flt.names or frozenset()
        return self._scan_back([last], lambda r: r not in named and pattern.matches(r) and may_pull(r), count)

    def newest(self, flt: RepoFilter, count: int, may_pull: MayPull) -> list[str]:
        """The newest ``count`` events of the filter's repositories in the stream, newest first (Atom)."""
        batch = self.store.before(None, min(BATCH, self.settings.scan_max))
        return self._scan_back(batch, lambda r: flt.matches(r) and may_pull(r), count)

    def _scan_back(self, batch: list[Entry], wanted: Callable[[str], bool], count: int) -> list[str]:
        found: list[str] = []
        scanned = 0
        while batch:
            for entry in batch:
                scanned += 1
                if entry.repo and wanted(entry.repo):
                    found.append(entry.data)
                    if len(found) == count:
                        return found
            if scanned >= self.settings.scan_max:
                break
            batch = self.store.before(batch[-1].id, min(BATCH, self.settings.scan_max - scanned))
        return found

    def repo_newest(self, name: str, count: int) -> list[str]:
        """A repository's newest events, newest first (its outbox holds the last recent_per_repo)."""
        return self.store.repo_events(name, min(count, self.settings.recent_per_repo))

    # -- watch lists -------------------------------------------------------------------------
    def put_watch(self, flt: RepoFilter) -> str:
        """Store a filter under an id derived from its content; return the id."""
        spec = orjson.dumps(flt.spec(), option=orjson.OPT_SORT_KEYS)
        watch_id = hashlib.sha256(spec).hexdigest()[:32]
        self.store.put_watch(watch_id, spec, self.settings.watch_ttl_seconds)
        self._remember(watch_id, flt)
        return watch_id

    def get_watch(self, watch_id: str) -> RepoFilter:
        """The filter of a watch list (its lifetime renewed now and then).

        Raises:
            RegistryError(UNSUPPORTED, 404): unknown or expired: POST the list again.
        """
        now = time.monotonic()
        cached = self._watches.get(watch_id)
        if cached is not None and now - cached[1] < self.settings.watch_ttl_seconds / 10:
            return cached[0]
        spec = self.store.get_watch(watch_id, self.settings.watch_ttl_seconds) if len(watch_id) == 32 else None
        if spec is None:
            raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "watch", "reason": "watch-unknown"},
                                status=404, message="watch list unknown or expired: POST the list again")
        flt = repo_filter.from_spec(orjson.loads(spec))
        self._remember(watch_id, flt)
        return flt

    def _remember(self, watch_id: str, flt: RepoFilter) -> None:
        with self._watch_lock:
            if len(self._watches) >= _WATCH_CACHE:
                self._watches.pop(next(iter(self._watches)))
            self._watches[watch_id] = (flt, time.monotonic())


def feed_building() -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, status=503, message="the update feed is being rebuilt from storage",
                         headers={"Retry-After": "5"})


def _time_and_repository(data: str) -> tuple[str, str]:
    doc = orjson.loads(data)
    return doc["time"], doc["repository"]
