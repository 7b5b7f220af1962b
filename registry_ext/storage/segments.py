"""The segment files of one tag history: the only I/O ``TagHistory`` does (storage/history.py).

``TagHistory`` knows how lines are laid out in segments; a *segment files*
object knows where the bytes live. ``FileSegments`` keeps them as files
appended in place (fsynced, truncated back on failure); the object stores
keep them as objects rewritten whole (storage/object/history.py). A missing
segment raises ``FileNotFoundError`` from every method, whatever the store,
so the history reads the same on both.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Protocol

from registry_ext.storage.atomic import append_durably, write_atomic
from registry_ext.storage.layout import Layout


class SegmentFiles(Protocol):
    def path(self, segment: int) -> Path | str:
        """Where the segment lives (a file, or a driver key): for messages and tests."""

    def exists(self, segment: int) -> bool: ...

    def size(self, segment: int) -> int:
        """The segment's size in bytes."""

    def open(self, segment: int) -> BinaryIO:
        """The segment as a seekable binary stream (a context manager)."""

    def append(self, segment: int, line: bytes) -> None:
        """Append one line (creating the segment); whole or not at all (the caller holds the lock)."""

    def truncate(self, segment: int, size: int) -> None:
        """Cut the segment back to ``size`` bytes, durably."""

    def rewrite(self, segment: int, data: bytes) -> None:
        """Replace the segment with ``data`` atomically."""


class FileSegments:
    """Segments as files: appended in place (``append_durably``), replaced by rename."""

    def __init__(self, layout: Layout, name: str, tag: str):
        self.layout, self.name, self.tag = layout, name, tag

    def path(self, segment: int) -> Path:
        return self.layout.history_segment(self.name, self.tag, segment)

    def exists(self, segment: int) -> bool:
        return self.path(segment).exists()

    def size(self, segment: int) -> int:
        return os.path.getsize(self.path(segment))

    def open(self, segment: int) -> BinaryIO:
        return open(self.path(segment), "rb")

    def append(self, segment: int, line: bytes) -> None:
        append_durably(self.path(segment), line)

    def truncate(self, segment: int, size: int) -> None:
        with open(self.path(segment), "r+b") as handle:
            handle.truncate(size)
            os.fsync(handle.fileno())

    def rewrite(self, segment: int, data: bytes) -> None:
        write_atomic(self.path(segment), data, self.layout.tmp)
