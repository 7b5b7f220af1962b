"""Tag history (distribution-spec PR #606, ``extensions/_oci.md`` component ``tag-history``): pure semantics.

The history of a tag is the append-only log ``RepoStore.tag_history`` keeps
on storage (it outlives the tag and needs no index). This module turns it
into the descriptors of an OCI image index, newest first, each annotated with
``org.opencontainers.distribution.tag.timestamp`` (RFC 3339, UTC, ms) and
``org.opencontainers.distribution.tag.event`` (``created`` | ``deleted``; our
``moved`` is reported as ``created``: the tag now points at that manifest).

A page costs O(page), however long the history (storage/history.py): the
log is read backwards from where the page starts, and appends keep time
monotonic, so file order is time order. ``before`` is a binary search,
``since`` ends the scan at the first older event, ``cursor`` is the
position of the page's last entry (``<segment>-<offset>``: stable, since the
log only grows at its end). ``digest`` filters while scanning: at most
``limits.scan_max`` entries are passed over per request, and a page cut
short by that bound carries a ``Link`` to go on from where it stopped.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.reference import is_valid_tag
from registry_ext.storage import HistoryEvent, Storage
from registry_ext.storage.history import Position, TagHistory

TIMESTAMP_ANNOTATION = "org.opencontainers.distribution.tag.timestamp"
EVENT_ANNOTATION = "org.opencontainers.distribution.tag.event"
DEFAULT_PAGE = 100  # entries per page without `n` (bounded by limits.page_max)
_PUBLIC_EVENT = {"created": "created", "moved": "created", "deleted": "deleted"}

_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})")
_CURSOR = re.compile(r"([0-9]{1,9})-([0-9]{1,15})")
_TIMESTAMP_MAX = 64
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class HistoryQuery:
    """The request's parameters, as received (``None`` or ``""`` = absent)."""

    n: int | None = None
    before: str | None = None
    since: str | None = None
    digest: str | None = None
    cursor: str | None = None


@dataclasses.dataclass(frozen=True)
class HistoryPage:
    descriptors: list[dict[str, Any]]
    limit: int
    next_cursor: str | None  # set while entries remain: the `cursor` of the next page


def tag_history(storage: Storage, name: str, tag: str, query: HistoryQuery, page_max: int,
                scan_max: int) -> HistoryPage:
    """One page of a tag's history, newest first. An unknown repository or tag is an empty page.

    ``name`` must already be valid. ``before``/``since`` are strict bounds;
    ``digest`` keeps only events of that manifest; ``cursor`` resumes after
    the entry it names. All filters combine. At most ``scan_max`` entries
    that do not match are passed over (then the page ends early, with a cursor).

    Raises:
        RegistryError(UNSUPPORTED, 400): invalid tag, ``before``, ``since`` or ``cursor``.
        RegistryError(DIGEST_INVALID, 400): malformed ``digest``.
    """
    if not is_valid_tag(tag):
        raise RegistryError(ErrorCode.UNSUPPORTED, {"tag": tag[:200]},
                            message="invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
    before = parse_timestamp("before", query.before)
    since = parse_timestamp("since", query.since)
    digest = _parse_digest(query.digest) if query.digest else None
    cursor = _parse_cursor(query.cursor)
    limit = min(DEFAULT_PAGE if query.n is None else query.n, page_max)
    if limit == 0:
        return HistoryPage([], 0, None)
    log = storage.repos.tag_history(name, tag)
    if cursor is not None and not log.is_line_start(cursor):
        raise _bad_cursor(query.cursor)
    start = cursor
    if before is not None:
        bound = log.seek_time(before[1])
        start = bound if start is None else min(start, bound)
    page, next_cursor = _scan(log, start, limit, scan_max, digest, since[0] if since else None)
    return HistoryPage([_descriptor(log, pos, event) for pos, event in page], limit, next_cursor)


def _scan(log: TagHistory, start: Position | None, limit: int, scan_max: int, digest: str | None,
          since: int | None) -> tuple[list[tuple[Position, HistoryEvent]], str | None]:
    """Up to ``limit`` matching events from ``start`` backwards, and the next page's cursor if any remain."""
    page: list[tuple[Position, HistoryEvent]] = []
    passed = 0
    for pos, event in log.backwards(start):
        if event is not None and since is not None and event.at <= since:
            return page, None  # time is monotonic: everything further is older still
        if event is not None and (digest is None or event.digest == digest):
            if len(page) == limit:
                return page, _cursor(page[-1][0])  # one more match: there is a next page
            page.append((pos, event))
            continue
        passed += 1
        if passed >= scan_max:
            return page, _cursor(pos)  # scan bound: go on from here on the next page
    return page, None


def _descriptor(log: TagHistory, pos: Position, event: HistoryEvent) -> dict[str, Any]:
    media_type, size = event.media_type, event.size
    if not media_type:
        # A `deleted` line written (before appends filled it in) when the manifest link was already
        # gone has no media type: take it from the event just before, the tag's move to that digest.
        older = log.before(pos)
        if older is not None and older.digest == event.digest:
            media_type, size = older.media_type, older.size
    return {"mediaType": media_type, "digest": event.digest, "size": size,
            "annotations": {TIMESTAMP_ANNOTATION: format_timestamp(event.at),
                            EVENT_ANNOTATION: _PUBLIC_EVENT.get(event.event, event.event)}}


def _cursor(pos: Position) -> str:
    return f"{pos[0]}-{pos[1]}"


def format_timestamp(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2026-07-23T12:34:56.789Z``."""
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f".{t.microsecond // 1000:03d}Z")


def parse_timestamp(param: str, value: str | None) -> tuple[int, int] | None:
    """An RFC 3339 date-time as ``(floor, ceil)`` milliseconds since the epoch (``None`` when absent).

    Any offset and any number of fraction digits are accepted, and compared
    exactly: an event at ``at`` ms is strictly before the instant when
    ``at < ceil``, strictly after it when ``at > floor``. ``t``/``z`` may be
    lower case (RFC 3339 §5.6); a leap second ``:60`` counts as the next second.

    Raises:
        RegistryError(UNSUPPORTED, 400)
    """
    if not value:
        return None
    match = _RFC3339.fullmatch(value) if len(value) <= _TIMESTAMP_MAX else None
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        if second > 60:
            raise ValueError(value)
        offset = match.group(8)
        off_minutes = 0
        if offset not in ("Z", "z"):
            off_h, off_m = int(offset[1:3]), int(offset[4:6])
            if off_h > 23 or off_m > 59:
                raise ValueError(value)
            off_minutes = (off_h * 60 + off_m) * (-1 if offset[0] == "-" else 1)
        local = dt.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=dt.timezone.utc)
    except ValueError:
        hint = " (percent-encode '+' as %2B)" if " " in value else ""
        raise RegistryError(ErrorCode.UNSUPPORTED, {param: value[:100]},
                            message=f"query parameter {param} must be an RFC 3339 timestamp such as "
                                    f"2026-07-23T12:34:56.789Z{hint}") from None
    seconds = (local - _EPOCH) // dt.timedelta(seconds=1) + (second == 60) - off_minutes * 60
    fraction = match.group(7) or ""
    floor = seconds * 1000 + int((fraction + "000")[:3])
    return floor, floor + (1 if fraction[3:].strip("0") else 0)


def _parse_digest(value: str) -> str:
    """The ``digest`` parameter, normalised.

    Raises:
        RegistryError(DIGEST_INVALID, 400)
    """
    try:
        return str(parse_digest(value))
    except RegistryError as err:
        raise RegistryError(ErrorCode.DIGEST_INVALID, err.detail,
                            message=f"query parameter digest: {err.message}") from None


def _parse_cursor(value: str | None) -> Position | None:
    """The position a ``cursor`` from a ``Link`` header names (``None`` when absent).

    Raises:
        RegistryError(UNSUPPORTED, 400)
    """
    if not value:
        return None
    match = _CURSOR.fullmatch(value)
    if match is None:
        raise _bad_cursor(value)
    return int(match.group(1)), int(match.group(2))


def _bad_cursor(value: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"cursor": value[:100]},
                         message="query parameter cursor is invalid: use the Link header's URL as given")
