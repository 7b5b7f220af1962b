"""Tag history on storage: one log per tag, in bounded segments, read from the end.

A tag's history is JSON lines ``{"digest", "at", "event", "media_type",
"size"}``, oldest first, split into segments (layout.py):
``_history/<tag>`` is segment 0 (the whole history, as it was before
segments existed), ``_history/<tag>~<n>`` segment n. An append goes to
the newest segment while it is smaller than ``SEGMENT_BYTES``, else it
opens the next one; segments before the newest never change. Appends
happen under the repository lock, and each one:

- truncates a torn tail (a crash mid-append) first, so a new line never
  lands on the end of a torn one;
- makes time monotonic: ``at`` is raised to the last event's when the
  clock went backwards, so file order *is* time order;
- completes or is truncated back and raises (atomic.append_durably).

Reads never load a whole history: ``backwards`` yields lines from any
position towards the oldest, a block at a time; ``seek_time`` finds the
first event at or after an instant by binary search, over segments and
then over byte offsets within one; ``last`` reads the newest line. A
position ``(segment, offset)`` names the first byte of a line and stays
valid forever (segments only grow at their end). On storage without
appends (an S3 driver, later) the newest segment is rewritten whole, at
most ``SEGMENT_BYTES`` plus one line per event; nothing else changes.
All segment I/O goes through a *segment files* object (storage/segments.py):
``FileSegments`` here, ``ObjectSegments`` on a storage driver
(storage/object/history.py).

Lines that do not parse (a torn line from before appends were
truncated back, or damage) are skipped by readers and reported, and
repaired, by ``damaged``/``repair`` (``registry-ext check``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import BinaryIO, Iterator

import orjson

from registry_ext.storage.layout import Layout
from registry_ext.storage.segments import FileSegments, SegmentFiles

log = logging.getLogger(__name__)

SEGMENT_BYTES = 64 * 1024  # a segment is closed once this big: bounds a rewrite-whole append
BLOCK = 64 * 1024  # bytes read at a time
PROBE = 4096  # bytes read for one line of a binary search (lines are a few hundred bytes)
_EVENT_START = b'{"digest":'

Position = tuple[int, int]  # (segment, byte offset of a line's first byte)


@dataclasses.dataclass(frozen=True)
class HistoryEvent:
    """One change of a tag: ``created`` (first push), ``moved`` or ``deleted``.

    ``digest``, ``media_type`` and ``size`` describe the manifest the tag
    pointed at after the change (before it, for ``deleted``).
    """

    tag: str
    digest: str
    at: int
    event: str
    media_type: str
    size: int


@dataclasses.dataclass(frozen=True)
class Damage:
    """A line of a segment that does not parse (``torn``: the file's unterminated tail)."""

    segment: int
    offset: int
    length: int
    torn: bool


def encode(event: HistoryEvent) -> bytes:
    return orjson.dumps({"digest": event.digest, "at": event.at, "event": event.event,
                         "media_type": event.media_type, "size": event.size}) + b"\n"


def decode(tag: str, line: bytes) -> HistoryEvent | None:
    """The event a line holds (without its newline), or None when it does not parse."""
    try:
        raw = orjson.loads(line)
        event = HistoryEvent(tag, raw["digest"], raw["at"], raw["event"], raw["media_type"], raw["size"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    ok = (isinstance(event.digest, str) and type(event.at) is int and isinstance(event.event, str)
          and isinstance(event.media_type, str) and type(event.size) is int)
    return event if ok else None


class TagHistory:
    """The history of one tag of one repository.

    Its segments are files under ``layout`` unless ``files`` says where else they are.
    """

    def __init__(self, layout: Layout | None, name: str, tag: str, files: SegmentFiles | None = None):
        self.layout, self.name, self.tag = layout, name, tag
        if files is None:
            assert layout is not None
            files = FileSegments(layout, name, tag)
        self.files = files

    def path(self, segment: int) -> Path | str:
        return self.files.path(segment)

    def newest_segment(self) -> int | None:
        """The newest segment's number (segments are numbered without gaps), in O(log n) stats."""
        exists = self.files.exists
        if not exists(0):
            return None
        low, high = 0, 1
        while exists(high):
            low, high = high, high * 2
        while high - low > 1:  # low exists, high does not
            mid = (low + high) // 2
            low, high = (mid, high) if exists(mid) else (low, mid)
        return low

    # -- writes (the caller holds the repository lock) -----------------------
    def append(self, event: HistoryEvent) -> HistoryEvent:
        """Append ``event`` (its ``at`` raised to the last event's if the clock went back); the stored event."""
        segment = self.newest_segment() or 0
        size = self._cut_torn_tail(segment)
        last = self.last()
        if last is not None:
            event = dataclasses.replace(event, at=max(event.at, last.at))
            if not event.media_type and last.digest == event.digest:  # a delete after the manifest link went
                event = dataclasses.replace(event, media_type=last.media_type, size=last.size)
        if size >= SEGMENT_BYTES:
            segment += 1
        self.files.append(segment, encode(event))
        return event

    def _cut_torn_tail(self, segment: int) -> int:
        """Truncate an unterminated last line (a crash mid-append); the segment's size after."""
        try:
            size = self.files.size(segment)
        except FileNotFoundError:
            return 0
        with self.files.open(segment) as handle:
            end = _complete_end(handle, size)
        if end != size:
            log.warning("history %s: cutting a torn line of %d bytes at the end of %s", self.tag, size - end,
                        self.path(segment))
            self.files.truncate(segment, end)
        return end

    # -- reads ---------------------------------------------------------------
    def backwards(self, start: Position | None = None) -> Iterator[tuple[Position, HistoryEvent | None]]:
        """Events strictly before ``start`` (default: the end), newest first; None for a line that does not parse."""
        if start is None:
            segment = self.newest_segment()
            if segment is None:
                return
            end = None
        else:
            segment, end = start
        while segment >= 0:
            try:
                with self.files.open(segment) as handle:
                    size = _length(handle)
                    for offset, line in _lines_back(handle, size if end is None else min(end, size)):
                        yield (segment, offset), decode(self.tag, line)
            except FileNotFoundError:
                return
            segment, end = segment - 1, None

    def last(self) -> HistoryEvent | None:
        """The newest event that parses."""
        return next((event for _pos, event in self.backwards() if event is not None), None)

    def before(self, position: Position) -> HistoryEvent | None:
        """The event just older than ``position`` (a line that does not parse counts as none)."""
        return next((event for _pos, event in self.backwards(position)), None)

    def is_line_start(self, position: Position) -> bool:
        """Whether ``position`` names the start of a line (or the end) of an existing segment."""
        segment, offset = position
        try:
            with self.files.open(segment) as handle:
                if offset > _length(handle):
                    return False
                if offset == 0:
                    return True
                handle.seek(offset - 1)
                return handle.read(1) == b"\n"
        except FileNotFoundError:
            return False

    def seek_time(self, ms: int) -> Position:
        """The position before which every event is older than ``ms`` (and none after it is).

        Binary search: over segments by their first event, then over byte
        offsets within one. Exact because appends keep time monotonic.
        """
        newest = self.newest_segment()
        if newest is None:
            return 0, 0
        low, high = -1, newest + 1  # the last segment whose first event is older than ms, in (low, high)
        while high - low > 1:
            mid = (low + high) // 2
            first = self._first_at(mid)
            low, high = (mid, high) if first is None or first < ms else (low, mid)
        if low < 0:
            return 0, 0
        with self.files.open(low) as handle:
            return low, _seek_in_segment(handle, self.tag, ms)

    def _first_at(self, segment: int) -> int | None:
        with self.files.open(segment) as handle:
            for _offset, line in _lines_forward(handle, 0, _length(handle)):
                event = decode(self.tag, line)
                if event is not None:
                    return event.at
        return None

    def events(self) -> list[HistoryEvent]:
        """Every event, oldest first: a whole read (check, rebuilds and tests; never a request)."""
        found = [event for _pos, event in self.backwards() if event is not None]
        found.reverse()
        return found

    # -- damage (registry-ext check) ----------------------------------------
    def damaged(self) -> list[Damage]:
        """Every line that does not parse, in every segment (a whole read)."""
        newest = self.newest_segment()
        found = []
        for segment in range(0 if newest is None else newest + 1):
            data = self._read(segment)
            offset = 0
            for line in data.split(b"\n")[:-1]:
                if decode(self.tag, line) is None:
                    found.append(Damage(segment, offset, len(line) + 1, False))
                offset += len(line) + 1
            if offset < len(data):
                found.append(Damage(segment, offset, len(data) - offset, True))
        return found

    def repair(self, segments: set[int]) -> None:
        """Rewrite ``segments`` without their bad lines, keeping an intact event glued to a torn one."""
        for segment in sorted(segments):
            kept = []
            for line in self._read(segment).split(b"\n"):
                if decode(self.tag, line) is not None:
                    kept.append(line + b"\n")
                elif (event := _salvage(self.tag, line)) is not None:
                    kept.append(encode(event))
            self.files.rewrite(segment, b"".join(kept))

    def _read(self, segment: int) -> bytes:
        """A whole segment (check and repair only: a segment is at most ``SEGMENT_BYTES`` and a line)."""
        with self.files.open(segment) as handle:
            return handle.read()


def _salvage(tag: str, line: bytes) -> HistoryEvent | None:
    """An event written onto the end of a torn line (before appends were truncated back)."""
    at = line.find(_EVENT_START, 1)
    while at > 0:
        event = decode(tag, line[at:])
        if event is not None:
            return event
        at = line.find(_EVENT_START, at + 1)
    return None


def _length(handle: BinaryIO) -> int:
    """The size of an open segment (every read below seeks first)."""
    return handle.seek(0, os.SEEK_END)


def _complete_end(handle: BinaryIO, size: int) -> int:
    """The offset just after the last newline of the segment (``size`` when it ends with one)."""
    pos = size
    while pos > 0:
        start = max(0, pos - BLOCK)
        handle.seek(start)
        cut = handle.read(pos - start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


def _lines_back(handle: BinaryIO, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of the complete lines ending at or before ``end``, last first.

    ``end`` is a line start or the file's size; an unterminated tail
    there (a torn line) is skipped. Reads ``BLOCK`` bytes at a time.
    """
    pos, tail, at_end = end, b"", True
    while pos > 0:
        start = max(0, pos - BLOCK)
        handle.seek(start)
        data = handle.read(pos - start) + tail
        stop = len(data)
        if at_end:
            stop = data.rfind(b"\n") + 1  # drop a torn tail
            if stop == 0 and start > 0:
                pos, tail = start, b""
                continue
            at_end = False
        while stop > 0:
            cut = data.rfind(b"\n", 0, stop - 1)
            if cut < 0 and start > 0:
                break  # the line began in an earlier block
            yield start + cut + 1, data[cut + 1:stop - 1]
            stop = cut + 1
        pos, tail = start, data[:stop]


def _lines_forward(handle: BinaryIO, start: int, end: int, block: int = BLOCK) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of the complete lines starting at line start ``start``, before ``end``."""
    pos, carry = start, b""
    while pos < end:
        handle.seek(pos)
        data = carry + handle.read(min(block, end - pos))
        base = pos - len(carry)
        begin = 0
        while (cut := data.find(b"\n", begin)) >= 0:
            yield base + begin, data[begin:cut]
            begin = cut + 1
        pos += len(data) - len(carry)
        carry = data[begin:]


def _next_line_start(handle: BinaryIO, offset: int, end: int) -> int:
    """The first line start at or after ``offset`` (``end`` if none before it)."""
    if offset == 0:
        return 0
    pos = offset - 1
    while pos < end:
        handle.seek(pos)
        data = handle.read(min(BLOCK, end - pos))
        cut = data.find(b"\n")
        if cut >= 0:
            return min(pos + cut + 1, end)
        pos += len(data)
    return end


def _seek_in_segment(handle: BinaryIO, tag: str, ms: int) -> int:
    """The first line start of the segment whose event is at or after ``ms`` (its complete end if none)."""
    end = _complete_end(handle, _length(handle))
    low, high = 0, end  # the answer is a line start in [low, high]; events before low are older than ms
    while high - low > BLOCK:
        probe = _next_line_start(handle, (low + high) // 2, high)
        if probe >= high:
            break  # one huge (damaged) line: scan what is left
        line = next(_lines_forward(handle, probe, high, PROBE), None)
        event = decode(tag, line[1]) if line else None
        low, high = (probe, high) if event is None or event.at < ms else (low, probe)
    for offset, line in _lines_forward(handle, low, high):
        event = decode(tag, line)
        if event is not None and event.at >= ms:
            return offset
    return high
