"""Per-repository records on the filesystem: blob links, manifest links, tags, history.

These small files are what ``reindex`` reads to rebuild Redis. Each is
written atomically; tag history is an append-only log that outlives the tag.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
from pathlib import Path
from typing import Iterator

import orjson

from registry_ext.oci.digest import ALGORITHMS, Digest
from registry_ext.storage.atomic import append_durably, remove, write_atomic
from registry_ext.storage.layout import Layout


@dataclasses.dataclass(frozen=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    pushed_at: int


@dataclasses.dataclass(frozen=True)
class HistoryEvent:
    """One change of a tag: ``created`` (first push), ``moved`` or ``deleted``.

    ``digest``, ``media_type`` and ``size`` describe the manifest the tag
    pointed at after the change (before it, for ``deleted``).
    """

    tag: str
    digest: str
    at: int
    event: str
    media_type: str
    size: int


@dataclasses.dataclass(frozen=True)
class TagRecord:
    tag: str
    digest: str
    created_at: int
    updated_at: int


class RepoStore:
    def __init__(self, layout: Layout):
        self.layout = layout

    # -- repositories -------------------------------------------------------
    def exists(self, name: str) -> bool:
        """True once anything was pushed: a parent folder of another repository does not count."""
        folder = self.layout.repo(name)
        return any((folder / sub).is_dir() for sub in ("_blobs", "_manifests", "_tags"))

    def names(self) -> Iterator[str]:
        """Every repository: a folder holding ``_blobs``, ``_manifests`` or ``_tags``."""
        root = self.layout.repos
        for folder, dirs, _files in os.walk(root):
            if any(d in dirs for d in ("_blobs", "_manifests", "_tags")):
                yield Path(folder).relative_to(root).as_posix()
            dirs[:] = [d for d in dirs if not d.startswith("_")]

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Serialise tag and manifest changes of one repository across processes."""
        path = self.layout.lock(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    @contextlib.contextmanager
    def try_lock(self, name: str) -> Iterator[bool]:
        """The repository lock if it is free right now (True), else False without waiting.

        A lock held by a process that died is free: the kernel drops it with the process.
        """
        path = self.layout.lock(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    # -- blob links ---------------------------------------------------------
    def link_blob(self, name: str, digest: Digest) -> None:
        path = self.layout.blob_link(name, digest)
        if not path.exists():
            write_atomic(path, b"", self.layout.tmp)

    def has_blob(self, name: str, digest: Digest) -> bool:
        return self.layout.blob_link(name, digest).exists()

    def unlink_blob(self, name: str, digest: Digest) -> bool:
        return remove(self.layout.blob_link(name, digest))

    # -- manifests ----------------------------------------------------------
    def put_manifest(self, name: str, record: ManifestRecord, digest: Digest) -> None:
        data = orjson.dumps({"media_type": record.media_type, "size": record.size,
                             "pushed_at": record.pushed_at})
        write_atomic(self.layout.manifest_link(name, digest), data, self.layout.tmp)

    def manifest(self, name: str, digest: Digest) -> ManifestRecord | None:
        try:
            raw = orjson.loads(self.layout.manifest_link(name, digest).read_bytes())
        except FileNotFoundError:
            return None
        return ManifestRecord(str(digest), raw["media_type"], raw["size"], raw["pushed_at"])

    def delete_manifest(self, name: str, digest: Digest) -> bool:
        return remove(self.layout.manifest_link(name, digest))

    def manifests(self, name: str) -> Iterator[ManifestRecord]:
        for algorithm in ALGORITHMS:
            folder = self.layout.manifests_dir(name) / algorithm
            if folder.is_dir():
                for entry in sorted(os.listdir(folder)):
                    record = self.manifest(name, Digest(algorithm, entry))
                    if record is not None:
                        yield record

    # -- tags ---------------------------------------------------------------
    def tag(self, name: str, tag: str) -> TagRecord | None:
        try:
            raw = orjson.loads(self.layout.tag(name, tag).read_bytes())
        except FileNotFoundError:
            return None
        return TagRecord(tag, raw["digest"], raw["created_at"], raw["updated_at"])

    def put_tag(self, name: str, record: TagRecord) -> None:
        data = orjson.dumps({"digest": record.digest, "created_at": record.created_at,
                             "updated_at": record.updated_at})
        write_atomic(self.layout.tag(name, record.tag), data, self.layout.tmp)

    def delete_tag(self, name: str, tag: str) -> bool:
        return remove(self.layout.tag(name, tag))

    def tags(self, name: str) -> Iterator[TagRecord]:
        folder = self.layout.tags_dir(name)
        if folder.is_dir():
            for entry in sorted(os.listdir(folder)):
                record = self.tag(name, entry)
                if record is not None:
                    yield record

    # -- tag history --------------------------------------------------------
    def record_history(self, name: str, event: HistoryEvent) -> None:
        line = orjson.dumps({"digest": event.digest, "at": event.at, "event": event.event,
                             "media_type": event.media_type, "size": event.size}) + b"\n"
        append_durably(self.layout.history(name, event.tag), line)

    def history_tags(self, name: str) -> list[str]:
        """Every tag with a history, deleted ones included (the update feed's rebuild reads them all)."""
        try:
            return sorted(os.listdir(self.layout.history(name, "_").parent))
        except FileNotFoundError:
            return []

    def history(self, name: str, tag: str) -> list[HistoryEvent]:
        """Events of one tag, oldest first (a torn last line from a crash is skipped)."""
        try:
            lines = self.layout.history(name, tag).read_bytes().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                raw = orjson.loads(line)
                events.append(HistoryEvent(tag, raw["digest"], raw["at"], raw["event"], raw["media_type"],
                                           raw["size"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return events
