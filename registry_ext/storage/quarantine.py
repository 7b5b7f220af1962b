"""Removing a file unless it was touched: garbage collection's one storage primitive (docs/gc.md).

A writer that relies on a blob or a blob link that may already exist
*touches* it (``touch``: its mtime becomes now) before answering; a touch
that finds no file (``FileNotFoundError``) tells the writer it must write
the file again or give up. ``take`` removes a file in two steps: it renames
it to ``gc/<its path below the root>`` (atomic), then reads the mtime of
what it moved. A file modified after the run's ``cutoff`` is put back (a
hard link, which never replaces a file written meanwhile); an older one is
deleted. So a touch either lands before the rename, and the file is put
back, or finds the file gone: no writer relies on a file gc removes.

A run killed between the two steps leaves the file under ``gc/``;
``recover`` puts every such file back (the next run decides again).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from registry_ext import failpoints
from registry_ext.storage.atomic import fsync_dir
from registry_ext.storage.layout import Layout


def touch(path: Path) -> bool:
    """Set the file's mtime to now; False when it does not exist (gc took it, or it never was)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def take(layout: Layout, path: Path, cutoff: float) -> int | None:
    """Delete ``path`` unless it was modified after ``cutoff`` (epoch seconds).

    Returns the size deleted; None when the file was kept (touched) or was not there.
    """
    held = layout.quarantine / path.relative_to(layout.root)
    held.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(path, held)
    except FileNotFoundError:
        return None
    failpoints.hit("gc.after-take")
    try:
        stat = os.stat(held)
        if stat.st_mtime > cutoff:
            _put_back(held, path)
            return None
        os.unlink(held)
    except FileNotFoundError:  # an overlapping run (a stalled holder) put it back meanwhile
        return None
    return stat.st_size


def recover(layout: Layout) -> int:
    """Put back every file a killed run left under ``gc/``; the count (empty folders are removed)."""
    restored = 0
    root = layout.quarantine
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            held = Path(folder) / name
            _put_back(held, layout.root / held.relative_to(root))
            restored += 1
        if Path(folder) != root:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    return restored


def pending(layout: Layout) -> bool:
    """Whether a killed run left anything under ``gc/`` (one folder listing)."""
    try:
        return bool(os.listdir(layout.quarantine))
    except FileNotFoundError:
        return False


def _put_back(held: Path, path: Path) -> None:
    """Link ``held`` back at ``path`` unless a writer put a file there meanwhile, then drop ``held``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.link(held, path)
        fsync_dir(path.parent)
    os.unlink(held)
