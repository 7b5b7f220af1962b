"""Accept or refuse the storage root before anything is written to it (issue #10 item 5).

``serve`` (and every worker's app) may create a new root; ``check``,
``reindex``, ``purge-uploads`` and ``mirror-diff`` only open an existing
one and never create it. Both refuse, with one line saying why:

- a marker of another format or of an unknown layout version;
- a root that is missing, empty or not ours while the index lists
  repositories: the classic wrong ``--data-dir``, which would otherwise
  look like a registry whose repositories were all deleted;
- for ``serve``, a folder holding other files (not a registry's);
- for the other commands, any root without a marker or registry data.

A root holding registry data but no marker (written before markers
existed) is adopted: the marker is written and everything goes on.
"""
from __future__ import annotations

import logging

from registry_ext.index import Index
from registry_ext.storage import Storage
from registry_ext.storage import marker
from registry_ext.storage.identity import Identity, load_identity
from registry_ext.storage.marker import RootRefused, RootState

log = logging.getLogger(__name__)


def claim_root(storage: Storage, index: Index | None, *, create: bool) -> None:
    """Make sure ``storage``'s root is a registry-ext root (creating it if ``create``).

    ``index`` is asked whether it lists repositories when the root holds
    none; without one (``purge-uploads``) such a root is simply refused.

    Raises:
        RootRefused: the root must not be used; the message is one line.
        redis.RedisError: the index had to be asked and could not be reached.
    """
    if storage.on_objects:
        _claim_objects(storage, index, create)
        return
    layout = storage.layout
    state = marker.inspect(layout)
    if state is RootState.DATA:
        marker.write(layout)
        log.warning("storage root %s holds registry data without a marker: adopted (layout marker written)",
                    layout.root)
    elif state is not RootState.OURS:
        _refuse_or_create(storage, index, state, create)
    marker.prepare(layout)


def _refuse_or_create(storage: Storage, index: Index | None, state: RootState, create: bool) -> None:
    root = storage.layout.root
    _refuse(storage, index, state, create)
    root.mkdir(parents=True, exist_ok=True)
    if marker.write(storage.layout):
        log.warning("new storage root %s (layout marker written)", root)


def _refuse(storage: Storage, index: Index | None, state: RootState, create: bool) -> None:
    """Raise RootRefused unless a new registry may start on this unmarked store."""
    where = storage.where()
    listed = index.read.repos_page(None, 1) if index is not None else []
    if listed:
        keys = "storage.s3.bucket, storage.s3.prefix" if storage.on_objects else "--data-dir, storage.root"
        raise RootRefused(f"storage root {where} {state.value}, but the index (redis prefix "
                          f"{index.keys.prefix!r}) lists repositories, e.g. {listed[0]!r}: wrong storage root "
                          f"({keys})? refusing to use it")
    if not create:
        raise RootRefused(f"storage root {where} {state.value}: not a registry-ext storage root "
                          f"(`registry-ext serve` creates one)")
    if state is RootState.FOREIGN:
        raise RootRefused(f"storage root {where} {state.value}: choose an empty or new "
                          f"{'prefix' if storage.on_objects else 'folder'}")


def _claim_objects(storage: Storage, index: Index | None, create: bool) -> None:
    """The same decisions for a bucket prefix: its marker, else its contents, else the index."""
    from registry_ext.storage.object import root as object_root

    state = object_root.inspect(storage.driver)
    if state is RootState.DATA:
        object_root.write_marker(storage.driver)
        log.warning("storage %s holds registry data without a marker: adopted", storage.where())
    elif state is not RootState.OURS:
        _refuse(storage, index, state, create)
        if object_root.write_marker(storage.driver):
            log.warning("new storage %s (layout marker written)", storage.where())
    storage.layout.tmp.mkdir(parents=True, exist_ok=True)


def storage_identity(storage: Storage, create: bool = True) -> Identity:
    """The registry's identity (storage/identity.py), kept with the data wherever that is."""
    if storage.on_objects:
        from registry_ext.storage.object.root import load_identity as load_object_identity

        return load_object_identity(storage.driver, create)
    return load_identity(storage.layout, create)


__all__ = ["claim_root", "storage_identity", "RootRefused"]
