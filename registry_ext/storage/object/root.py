"""The marker and the identity of a registry on an object store (bucket + prefix).

The same two records as on a filesystem root (storage/marker.py,
storage/identity.py), at the same keys, written with ``put_if_absent`` so
hosts starting at once agree on the first one written. A bucket prefix that
holds objects but neither a marker nor registry data is refused like a
foreign folder: a mistyped prefix must not become an empty registry.
"""
from __future__ import annotations

import secrets

import orjson

from registry_ext.clock import now_ms
from registry_ext.storage.driver.base import DriverError, PathNotFound, StorageDriver
from registry_ext.storage.identity import Identity, parse_identity
from registry_ext.storage.layout import LAYOUT_VERSION
from registry_ext.storage.marker import FORMAT, RootRefused, RootState, check_marker
from registry_ext.storage.object import keys


def describe(driver: StorageDriver) -> str:
    """``s3://bucket/prefix``: how messages name the store."""
    options = getattr(driver, "options", None)
    if options is None:
        return driver.name
    return f"s3://{options.bucket}/{options.prefix.strip('/')}".rstrip("/")


def inspect(driver: StorageDriver) -> RootState:
    """What the store is, changing nothing. Raises RootRefused (bad marker, store unusable)."""
    where = describe(driver)
    try:
        driver.check()
        raw = driver.get_content(keys.MARKER)
    except PathNotFound:
        return _unmarked(driver)
    except DriverError as exc:
        raise RootRefused(f"storage {where} cannot be used: {exc.detail}") from None
    check_marker(raw, where, keys.MARKER)
    return RootState.OURS


def _unmarked(driver: StorageDriver) -> RootState:
    try:
        names = set(driver.list(""))
    except PathNotFound:
        return RootState.EMPTY
    if names & {keys.REPOS, keys.BLOBS}:
        return RootState.DATA
    if names - {keys.UPLOADS, keys.JOURNAL}:
        return RootState.FOREIGN
    return RootState.EMPTY


def write_marker(driver: StorageDriver) -> bool:
    """Write the marker unless one exists; True if this call wrote it."""
    doc = {"format": FORMAT, "layout": LAYOUT_VERSION, "created_at": now_ms()}
    return driver.put_if_absent(keys.MARKER, orjson.dumps(doc) + b"\n")


def load_identity(driver: StorageDriver, create: bool = True) -> Identity:
    """The registry's identity (storage/identity.py), created on first use unless ``create`` is false.

    Raises:
        FileNotFoundError: there is none yet and ``create`` is false.
    """
    try:
        return parse_identity(driver.get_content(keys.IDENTITY))
    except PathNotFound:
        if not create:
            raise FileNotFoundError(keys.IDENTITY) from None
    data = orjson.dumps({"id": secrets.token_hex(8), "key": secrets.token_hex(32)})
    driver.put_if_absent(keys.IDENTITY, data)  # another host may have won: read what is there
    return parse_identity(driver.get_content(keys.IDENTITY))
