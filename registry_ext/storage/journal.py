"""Intent journal: which index updates may be missing after a crash or a Redis fault.

A write changes storage first and the index second. Between the two a
worker can die (kill -9, OOM) or Redis can fail, leaving the index behind
storage. Before its first storage change, a write records what it is about
to touch in a small file under ``<root>/journal/``; after its index update
succeeded it removes the file. A file still there belongs to a write that
did not finish, and the reconciler (services/reconcile.py) re-derives those
objects' index entries from storage, which is the source of truth.

Writes of manifests and tags hold the repository lock for their whole
span, so an entry whose repository lock is free is never in flight.

Entries are not fsynced: they must outlive a process, not the machine. A
machine crash restarts Redis too, and a restarted Redis (new ``run_id``)
makes the registry verify the whole index against storage anyway
(services/maintenance.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

import orjson

from registry_ext.storage.atomic import file_mode, write_all
from registry_ext.storage.layout import Layout


@dataclasses.dataclass(frozen=True)
class Intent:
    """Objects of one repository whose index entries a write is about to change."""

    repo: str
    tags: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()
    catalog: bool = False


class Journal:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.folder = layout.journal

    @contextlib.contextmanager
    def pending(self, intent: Intent) -> Iterator[None]:
        """Record ``intent`` for the span of the block; keep it when the block raises."""
        path = self.open(intent)
        yield
        self.close(path)

    def open(self, intent: Intent) -> Path:
        """Write the entry (a small JSON document) and return its path.

        Complete or nothing: a write that fails (a full disk) removes the
        entry and raises, before the caller changed anything.
        """
        path = self.layout.journal_entry(uuid.uuid4().hex)
        data = orjson.dumps({"repo": intent.repo, "tags": intent.tags, "manifests": intent.manifests,
                             "catalog": intent.catalog})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode())
        try:
            write_all(fd, data)
        except BaseException:
            path.unlink()
            raise
        finally:
            os.close(fd)
        return path

    def close(self, path: Path) -> None:
        """The write finished: forget its entry (already gone when the reconciler took it)."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def exists(self, path: Path) -> bool:
        """Whether the entry is still there (the reconciler checks once it holds the lock)."""
        return path.exists()

    def age_ms(self, path: Path) -> int | None:
        """Milliseconds since the entry was written; None when it is gone."""
        try:
            return max(0, int((time.time() - path.stat().st_mtime) * 1000))
        except FileNotFoundError:
            return None

    def entries(self) -> Iterator[tuple[Path, Intent | None]]:
        """Every entry left, oldest name first; None for one whose content is unreadable.

        An unreadable entry comes from a process killed between creating
        the file and writing it, before any storage change.
        """
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            return
        for name in names:
            path = self.folder / name
            try:
                raw = orjson.loads(path.read_bytes())
                yield path, Intent(raw["repo"], tuple(raw["tags"]), tuple(raw["manifests"]),
                                   bool(raw["catalog"]))
            except FileNotFoundError:
                continue  # closed meanwhile
            except (orjson.JSONDecodeError, KeyError, TypeError):
                yield path, None
