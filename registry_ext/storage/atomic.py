"""Durable, atomic file writes: temp file, fsync, rename, fsync the folder.

Files get the mode ``open()`` would give them (0666 less the umask), not
``mkstemp``'s 0600: behind nginx, its workers read ``blobs/`` themselves
(X-Accel-Redirect), usually as another user; the folders' modes decide who
may (docs/deployment.md).
"""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(Path(tmp))
        raise
    fsync_dir(path.parent)


@functools.cache
def file_mode() -> int:
    """0o666 less this process's umask, read without changing it (Linux /proc; else 0o644)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def move_durably(src: Path, dst: Path) -> None:
    """fsync ``src`` and rename it to ``dst`` (replacing it), durably."""
    with open(src, "rb") as handle:
        os.fsync(handle.fileno())
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)


def append_durably(path: Path, line: bytes) -> None:
    """Append one record (a single write with O_APPEND) and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> bool:
    """Remove a file durably; False when it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
