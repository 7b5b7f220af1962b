"""A file re-read when it changes, checked at most once per interval (no restart needed)."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class WatchedFile(Generic[T]):
    """``get()`` gives ``parse(bytes)`` of the file, re-parsed when its inode, size or mtime change.

    A ``stat`` costs a few microseconds, so it is done at most every
    ``interval`` seconds per process. When the file cannot be read on a
    reload, the last good content stays in force and an error is logged
    (once per change): a half-deployed file never locks everyone out.
    """

    def __init__(self, path: str, parse: Callable[[bytes], T], interval: float = 1.0,
                 on_reload: Callable[[T], None] | None = None):
        self.path = path
        self.parse = parse
        self.interval = interval
        self.on_reload = on_reload
        self._lock = threading.Lock()
        self._signature = self._stat()
        self.value: T = parse(self._read())  # at start a bad file is an error for the caller
        self._next_check = time.monotonic() + interval

    def get(self) -> T:
        now = time.monotonic()
        if now >= self._next_check:
            with self._lock:
                if now >= self._next_check:
                    self._next_check = now + self.interval
                    self._maybe_reload()
        return self.value

    def _maybe_reload(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            value = self.parse(self._read())
        except (OSError, ValueError) as exc:
            log.error("cannot reload %s, keeping the previous content: %s", self.path, exc)
            return
        self.value = value
        log.info("reloaded %s", self.path)
        if self.on_reload is not None:
            self.on_reload(value)

    def _stat(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read(16 * 1024 * 1024 + 1)[:16 * 1024 * 1024]
