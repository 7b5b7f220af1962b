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
    listed = index.read.repos_page(None, 1) if index is not None else []
    if listed:
        raise RootRefused(f"storage root {root} {state.value}, but the index (redis prefix "
                          f"{index.keys.prefix!r}) lists repositories, e.g. {listed[0]!r}: wrong storage root "
                          f"(--data-dir, storage.root)? refusing to use it")
    if not create:
        raise RootRefused(f"storage root {root} {state.value}: not a registry-ext storage root "
                          f"(`registry-ext serve` creates one)")
    if state is RootState.FOREIGN:
        raise RootRefused(f"storage root {root} {state.value}: choose an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    if marker.write(storage.layout):
        log.warning("new storage root %s (layout marker written)", root)


__all__ = ["claim_root", "RootRefused"]
