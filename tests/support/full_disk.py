"""A small real filesystem that can be filled to an exact number of free pages (the full-disk tests:
tests/test_full_disk.py, tests/proxy/test_blobfill_full_disk.py). Mounting needs root."""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

PAGE = 4096


class Disk:
    """A mounted tmpfs and a filler file that takes all but ``leave`` pages."""

    def __init__(self, mount: Path):
        self.mount = mount
        self.filler = mount / "filler"

    def free_pages(self) -> int:
        stat = os.statvfs(self.mount)
        return stat.f_bavail * stat.f_frsize // PAGE

    def fill(self, leave: int = 0) -> None:
        self.free()
        size = (self.free_pages() - leave) * PAGE
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        assert self.free_pages() == leave

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    """An 8 MiB tmpfs mounted under ``tmp_path`` for the block; fails (never skips) without root."""
    if os.geteuid() != 0:
        pytest.fail("the full-disk tests mount a tmpfs: run the tests as root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mount)], check=True)
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
