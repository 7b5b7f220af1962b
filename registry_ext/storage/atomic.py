"""Durable, atomic file writes: temp file, fsync, rename, fsync the folder.

Every write here completes or fails: ``os.write`` may write fewer bytes
than asked without raising (a full disk across a page boundary does), so
``write_all`` loops until everything is written or the kernel raises
(``ENOSPC``, ``EDQUOT``, ``EIO``). An append that fails is truncated back,
so a failed append leaves the file as it was and the next one starts on a
line boundary. A full disk surfaces as ``OSError`` with ``errno`` ENOSPC
or EDQUOT (``is_storage_full``), which the app answers with 507.

Files get the mode ``open()`` would give them (0666 less the umask), not
``mkstemp``'s 0600: behind nginx, its workers read ``blobs/`` themselves
(X-Accel-Redirect), usually as another user; the folders' modes decide who
may (docs/deployment.md).
"""
from __future__ import annotations

import errno
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


FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the storage is out of space or over quota."""
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``, looping over short writes; raise OSError otherwise."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # not seen on Linux for regular files; never loop forever
            raise OSError(errno.EIO, "write returned 0")
        view = view[written:]


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir)
    try:
        try:
            os.fchmod(fd, file_mode())
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(Path(tmp))
        raise
    fsync_dir(path.parent)


def link_new(path: Path, data: bytes, tmp_dir: Path) -> bool:
    """Create ``path`` holding ``data`` unless it exists (atomic: no reader sees it partial).

    Returns False when ``path`` already existed (another process won).
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir)
    try:
        try:
            os.fchmod(fd, file_mode())
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        _unlink_quietly(Path(tmp))
    fsync_dir(path.parent)
    return True


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


def append_durably(path: Path, record: bytes) -> None:
    """Append one record and fsync it; on any failure truncate the file back and raise.

    The caller serialises appends to ``path`` (the repository lock), so the
    size read before the write is where the record starts.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
    try:
        size = os.fstat(fd).st_size
        try:
            write_all(fd, record)
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
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
