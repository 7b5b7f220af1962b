"""Tag history segments as objects: the segment files of storage/history.py on a storage driver.

An object store cannot append, so an append reads the newest segment and
writes it back whole with the new line (``put_content``: the new object is
visible whole or not at all, so a crash never leaves a torn line). A
segment is closed at ``SEGMENT_BYTES``, so a rewrite is at most 64 KiB
and a line. Appends run under the repository lock, like on a filesystem.
"""
from __future__ import annotations

import io
from typing import BinaryIO

from registry_ext.storage.driver.base import FileInfo, PathNotFound, StorageDriver
from registry_ext.storage.object import keys


class ObjectSegments:
    """The segments of one tag's history, for one operation.

    ``ObjectRepoStore.tag_history`` makes a new one per call, and it
    remembers what it saw (which segments exist, the last segment read)
    so a page of reads or an append costs a few requests, not one per
    line. An append or a truncation reads its segment afresh first.
    """

    def __init__(self, driver: StorageDriver, name: str, tag: str):
        self.driver, self.name, self.tag = driver, name, tag
        self._exists: dict[int, bool] = {}
        self._data: tuple[int, bytes] | None = None

    def path(self, segment: int) -> str:
        return keys.history_segment(self.name, self.tag, segment)

    def exists(self, segment: int) -> bool:
        known = self._exists.get(segment)
        if known is None:
            known = self._exists[segment] = self._stat(segment) is not None
        return known

    def size(self, segment: int) -> int:
        if self._data is not None and self._data[0] == segment:
            return len(self._data[1])
        info = self._stat(segment)
        if info is None:
            raise FileNotFoundError(self.path(segment))
        return info.size

    def open(self, segment: int) -> BinaryIO:
        return io.BytesIO(self._read(segment))

    def append(self, segment: int, line: bytes) -> None:
        try:
            data = self._read(segment, fresh=True)
        except FileNotFoundError:
            data = b""
        self.rewrite(segment, data + line)

    def truncate(self, segment: int, size: int) -> None:
        self.rewrite(segment, self._read(segment, fresh=True)[:size])

    def rewrite(self, segment: int, data: bytes) -> None:
        self.driver.put_content(self.path(segment), data)
        self._remember(segment, data)

    # -- internals ------------------------------------------------------------
    def _stat(self, segment: int) -> FileInfo | None:
        try:
            return self.driver.stat(self.path(segment))
        except PathNotFound:
            return None

    def _read(self, segment: int, fresh: bool = False) -> bytes:
        if not fresh and self._data is not None and self._data[0] == segment:
            return self._data[1]
        try:
            data = self.driver.get_content(self.path(segment))
        except PathNotFound:
            self._exists[segment] = False
            raise FileNotFoundError(self.path(segment)) from None
        self._remember(segment, data)
        return data

    def _remember(self, segment: int, data: bytes) -> None:
        self._exists[segment] = True
        self._data = (segment, data)
