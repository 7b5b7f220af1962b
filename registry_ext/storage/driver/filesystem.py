"""The filesystem driver: objects are files under one root folder.

Writes go to a temp file in ``<root>/tmp`` (same filesystem), are fsynced,
renamed into place and the folder fsynced (``durable=False`` skips both
fsyncs for records that need only survive the process). Every ``write`` is
looped until complete: a short count (ENOSPC across a page boundary returns
one without an error) is never taken for success. A full disk or quota
raises StorageFull and leaves the old object, if any, in place.

Files get the mode ``open()`` would give them (0666 less the umask), not
``mkstemp``'s 0600: behind nginx its workers read blobs themselves
(X-Accel-Redirect), usually as another user.
"""
from __future__ import annotations

import errno
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from registry_ext.storage.driver.base import (DriverError, FileInfo, FileWriter, InvalidOffset, PathNotFound,
                                              StorageDriver, StorageFull, check_path)

NAME = "filesystem"
COPY_CHUNK = 1 << 20
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def translate(exc: OSError, path: str) -> DriverError:
    """An OSError as the driver's error."""
    if exc.errno in _FULL:
        return StorageFull(NAME, f"no space left writing {path}: {exc.strerror}")
    if isinstance(exc, FileNotFoundError):
        return PathNotFound(NAME, path)
    return DriverError(NAME, f"{path}: {exc.strerror or exc}")


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte is written (a short count is not an error by itself)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "write wrote nothing")
        view = view[written:]


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


class _Writer(FileWriter):
    def __init__(self, driver: "FilesystemDriver", path: str):
        self.driver = driver
        self.path = path
        self.fd, self.tmp = driver.temp_file()
        self._size = 0
        self.finished = False

    def write(self, data: bytes) -> int:
        try:
            write_all(self.fd, data)
        except OSError as exc:
            self.cancel()
            raise translate(exc, self.path) from None
        self._size += len(data)
        return len(data)

    @property
    def size(self) -> int:
        return self._size

    def commit(self) -> None:
        self.finished = True
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.driver.place(self.tmp, self.path, durable=True)
        except OSError as exc:
            _unlink_quietly(self.tmp)
            raise translate(exc, self.path) from None

    def cancel(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        _unlink_quietly(self.tmp)
        self.finished = True


class FilesystemDriver(StorageDriver):
    name = NAME
    can_append = True

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    # -- paths ------------------------------------------------------------------
    def full(self, path: str, allow_root: bool = False) -> Path:
        check_path(NAME, path, allow_root=allow_root)
        return self.root / path if path else self.root

    def temp_file(self) -> tuple[int, str]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        os.fchmod(fd, file_mode())
        return fd, tmp

    def place(self, tmp: str, path: str, durable: bool) -> None:
        """Rename a finished temp file to ``path`` (and fsync the folder when durable)."""
        target = self.full(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        if durable:
            fsync_dir(target.parent)

    # -- reads ------------------------------------------------------------------
    def get_content(self, path: str) -> bytes:
        try:
            return self.full(path).read_bytes()
        except IsADirectoryError:
            raise PathNotFound(NAME, path) from None
        except OSError as exc:
            raise translate(exc, path) from None

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        try:
            handle = open(self.full(path), "rb")
        except (IsADirectoryError, FileNotFoundError):
            raise PathNotFound(NAME, path) from None
        except OSError as exc:
            raise translate(exc, path) from None
        size = os.fstat(handle.fileno()).st_size
        if offset < 0 or offset > size:
            handle.close()
            raise InvalidOffset(NAME, path, offset)
        handle.seek(offset)
        return handle if length is None else _Bounded(handle, length)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self.full(path, allow_root=True))
        except OSError as exc:
            raise translate(exc, path) from None
        is_dir = os.path.isdir(self.full(path, allow_root=True))
        return FileInfo(path, 0 if is_dir else st.st_size, int(st.st_mtime * 1000), is_dir)

    def list(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.full(path, allow_root=True)))
        except NotADirectoryError:
            raise PathNotFound(NAME, path) from None
        except OSError as exc:
            raise translate(exc, path) from None

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Objects below ``path`` in byte order of their paths (as S3 lists keys)."""
        base = self.full(path, allow_root=True)
        if not base.is_dir():
            return
        yield from self._walk(base)

    def _walk(self, folder: Path) -> Iterator[FileInfo]:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        keyed = sorted((e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e) for e in entries)
        for key, entry in keyed:
            if key.endswith("/"):
                yield from self._walk(Path(entry.path))
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            yield FileInfo(Path(entry.path).relative_to(self.root).as_posix(), st.st_size, int(st.st_mtime * 1000))

    # -- writes -----------------------------------------------------------------
    def put_content(self, path: str, data: bytes, durable: bool = True) -> None:
        self.full(path)
        fd, tmp = self.temp_file()
        try:
            write_all(fd, data)
            if durable:
                os.fsync(fd)
            os.close(fd)
            fd = -1
            self.place(tmp, path, durable)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            _unlink_quietly(tmp)
            raise translate(exc, path) from None

    def put_if_absent(self, path: str, data: bytes) -> bool:
        target = self.full(path)
        if target.exists():
            return False
        fd, tmp = self.temp_file()
        try:
            write_all(fd, data)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(tmp, target)  # fails if it exists: first writer wins
            fsync_dir(target.parent)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            raise translate(exc, path) from None
        finally:
            if fd >= 0:
                os.close(fd)
            _unlink_quietly(tmp)

    def writer(self, path: str) -> FileWriter:
        self.full(path)
        try:
            return _Writer(self, path)
        except OSError as exc:
            raise translate(exc, path) from None

    def move(self, src: str, dst: str) -> None:
        source = self.full(src)
        try:
            with open(source, "rb") as handle:
                os.fsync(handle.fileno())
            self.place(str(source), dst, durable=True)
        except OSError as exc:
            raise translate(exc, src) from None

    def delete(self, path: str) -> bool:
        target = self.full(path)
        try:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise translate(exc, path) from None
        fsync_dir(target.parent)
        return True

    def compose(self, dst: str, sources: list[str]) -> int:
        with self.writer(dst) as out:
            for src in sources:
                with self.reader(src) as handle:
                    while chunk := handle.read(COPY_CHUNK):
                        out.write(chunk)
            size = out.size
            out.commit()
        return size

    def append(self, path: str, stream: BinaryIO, limit: int | None) -> int:
        target = self.full(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
        except OSError as exc:
            raise translate(exc, path) from None
        try:
            start = os.fstat(fd).st_size
            written = 0
            try:
                while limit is None or written <= limit:
                    want = COPY_CHUNK if limit is None else min(COPY_CHUNK, limit - written + 1)
                    chunk = stream.read(want)  # the client's errors propagate as they are
                    if not chunk:
                        break
                    try:
                        write_all(fd, chunk)
                    except OSError as exc:
                        raise translate(exc, path) from None
                    written += len(chunk)
            except BaseException:
                os.ftruncate(fd, start)
                raise
            return written
        finally:
            os.close(fd)

    def local_path(self, path: str) -> str | None:
        return str(self.full(path))

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise translate(exc, str(self.root)) from None
        if not os.access(self.root, os.W_OK):
            raise DriverError(NAME, f"{self.root} is not writable")


class _Bounded:
    """At most ``length`` bytes of an open file from its current offset (keeps ``fileno``)."""

    def __init__(self, handle: BinaryIO, length: int):
        self.handle = handle
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.handle.read(size)
        self.remaining -= len(data)
        return data

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
