"""Named crash points, for the crash tests only (off unless ``testing.failpoints_file`` is set).

A write path calls ``hit("manifest.before-index")`` between two steps. With
no failpoints file configured that is one ``None`` check. With one, the
file (JSON ``{"<point>": "<action>"}``) is read at each hit; the first
process to reach an armed point claims the file by renaming it (so a point
fires once, in one worker, even though every worker reads the same file)
and then acts:

- ``kill``: SIGKILL this process (a worker dying mid-request);
- ``kill-group``: SIGKILL its whole process group (the whole server:
  gunicorn master, workers and an embedded redis-server);
- ``error``: raise ``OSError`` (a storage failure, e.g. a full disk).

Tests arm a point by writing the file while the server runs
(tests/e2e/test_crashes.py). Never configure it in production.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson

POINTS = frozenset({
    "upload.mid-chunk",          # part of a chunk appended to the session's data file
    "upload.after-adopt",        # verified bytes moved into blobs/, repository link not written
    "blob.after-link",           # repository link written, catalog not updated
    "manifest.after-link",       # manifest link written, tag file not yet
    "manifest.after-tag",        # tag file moved, history event not yet written
    "manifest.before-index",     # storage complete, index not updated
    "manifest.after-index",      # index updated (feed event staged), not yet copied to the feed
    "delete.after-untag",        # a manifest delete removed its tags on storage, not its link
    "delete.before-index",       # a tag or manifest delete changed storage, not the index
    "delete.after-index",        # a delete's index update (feed events staged) done, not copied to the feed
    "gc.after-take",             # gc renamed a blob or link under gc/, not yet deleted or put back
    "gc.before-delete",          # on S3: gc decided to delete a blob or link (holding its lease), not yet deleted
})
ACTIONS = frozenset({"kill", "kill-group", "error"})

_file: Path | None = None


def configure(path: str) -> None:
    """Arm reading from ``path`` (empty: failpoints off). Called by the app factory."""
    global _file
    _file = Path(path) if path else None


def hit(point: str) -> None:
    """Act on ``point`` if the failpoints file arms it (once across all processes)."""
    if _file is None:
        return
    try:
        armed = orjson.loads(_file.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return
    action = armed.get(point) if isinstance(armed, dict) else None
    if action is None or not _claim(_file):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "kill-group":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    raise OSError(f"failpoint {point}: injected storage error")


def _claim(path: Path) -> bool:
    try:
        os.rename(path, path.with_name(path.name + ".fired"))
    except FileNotFoundError:
        return False  # another worker fired it first
    return True
