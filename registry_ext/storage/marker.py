"""The storage root's marker: ``<root>/registry-ext.json`` says "a registry-ext store, layout N".

Without it a mistyped ``--data-dir`` looks like an empty registry, and
``check --repair`` used to create it and drop every repository from the
index as an orphan. The marker is written once, atomically and never over
another one, when the registry first starts on an empty root; a root from
before markers (``repos/`` or ``blobs/`` holding something) is adopted by
writing it. What a command does with each state is decided in
services/root.py, which can also ask the index.
"""
from __future__ import annotations

import enum
import os

import orjson

from registry_ext.clock import now_ms
from registry_ext.storage.atomic import link_new
from registry_ext.storage.layout import LAYOUT_VERSION, Layout

FORMAT = "registry-ext"
# Folders a root may hold without holding data: our own, empty; then what the embedded Redis and a
# freshly made filesystem put there, and our scratch folder (another process starting at the same
# moment may have a temp file there, about to become the marker), and the token signing key that
# `serve` makes before the root is claimed (auth/).
_SKELETON = frozenset({"blobs", "repos", "uploads", "journal"})
_ALWAYS_ALLOWED = frozenset({"redis", "lost+found", "tmp", "auth"})  # auth: the token signing key


class RootRefused(Exception):
    """The storage root is not one this registry may use; the message is one line saying why."""


class RootState(enum.Enum):
    OURS = "holds a registry-ext marker"
    DATA = "holds registry data but no marker (a store from before markers)"
    MISSING = "does not exist"
    EMPTY = "holds no registry data"
    FOREIGN = "is not empty and holds no registry data (no registry-ext.json, repos/ or blobs/)"


def inspect(layout: Layout) -> RootState:
    """What ``layout.root`` is, without changing anything.

    Raises:
        RootRefused: the marker is unreadable, of another format, or of a layout version this
            code does not know.
    """
    try:
        raw = layout.marker.read_bytes()
    except FileNotFoundError:
        return _unmarked(layout)
    except NotADirectoryError:
        raise RootRefused(f"storage root {layout.root} is not a directory") from None
    check_marker(raw, str(layout.root), layout.marker.name)
    return RootState.OURS


def check_marker(raw: bytes, where: str, name: str) -> None:
    """Raise RootRefused unless ``raw`` is a marker of our format and layout version."""
    try:
        doc = orjson.loads(raw)
        fmt, version = doc["format"], doc["layout"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise RootRefused(f"storage root {where}: {name} is unreadable") from None
    if fmt != FORMAT:
        raise RootRefused(f"storage root {where}: {name} names format {fmt!r}, not {FORMAT!r}")
    if version != LAYOUT_VERSION:
        raise RootRefused(f"storage root {where}: {name} says storage layout {version!r}; "
                          f"this registry-ext reads layout {LAYOUT_VERSION} only (a newer version wrote it?)")


def _unmarked(layout: Layout) -> RootState:
    try:
        names = set(os.listdir(layout.root))
    except FileNotFoundError:
        return RootState.MISSING
    except NotADirectoryError:
        raise RootRefused(f"storage root {layout.root} is not a directory") from None
    if any(_non_empty_dir(layout.root / name) for name in ("repos", "blobs")):
        return RootState.DATA
    for name in names - _ALWAYS_ALLOWED:
        if name not in _SKELETON or not _empty_dir(layout.root / name):
            # Workers of one server start together: what looks foreign may be another worker's first
            # upload, made after it wrote the marker that was not there when we looked.
            return inspect(layout) if layout.marker.exists() else RootState.FOREIGN
    return RootState.EMPTY


def _non_empty_dir(path) -> bool:
    try:
        return bool(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return False


def _empty_dir(path) -> bool:
    try:
        return not os.listdir(path)
    except NotADirectoryError:
        return False


def write(layout: Layout) -> bool:
    """Write the marker unless one exists (several workers may start at once); True if written."""
    doc = {"format": FORMAT, "layout": LAYOUT_VERSION, "created_at": now_ms()}
    return link_new(layout.marker, orjson.dumps(doc) + b"\n", layout.tmp)


def prepare(layout: Layout) -> None:
    """The folders every write expects, inside a root already accepted."""
    for folder in (layout.tmp, layout.uploads, layout.repos, layout.journal):
        folder.mkdir(exist_ok=True)
