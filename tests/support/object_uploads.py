"""Helpers of the object upload store tests (tests/storage_object/test_object_upload*.py).

Drivers as tests/contract/test_driver.py builds them (the filesystem driver, or S3Driver on the
``s3_server`` RGW with 5 MiB parts, so one chunk over 5 MiB is a multipart write and a
server-side part copy at commit), stores whose locks are StoreLocks leases on the run's real
redis-server, and readers of a session folder.
"""
from __future__ import annotations

import hashlib
import io

import orjson
import redis

from registry_ext.index.store_locks import StoreLocks
from registry_ext.oci.digest import Digest
from registry_ext.storage.driver.base import StorageDriver
from registry_ext.storage.object import keys
from registry_ext.storage.object.uploads import ObjectUploadStore, Touching

TTL, IDLE = 3600, 60


def store_for(driver: StorageDriver, client: redis.Redis, prefix: str,
              blobs: Touching | None = None) -> ObjectUploadStore:
    """A store with locks of its own: two of them on one driver and prefix are two workers (or hosts)."""
    return ObjectUploadStore(driver, StoreLocks(client, prefix, wait_s=10), blobs, TTL, IDLE)


def blob(size: int, seed: int = 0) -> bytes:
    return (bytes(range(256)) * (size // 256 + 2))[seed % 256:][:size]


def sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def objects(driver: StorageDriver, upload_id: str) -> dict[str, int]:
    """The session folder: object name -> size."""
    return {info.path.rsplit("/", 1)[1]: info.size for info in driver.walk(keys.upload_dir(upload_id))}


def chunks(driver: StorageDriver, upload_id: str) -> dict[str, int]:
    return {name: size for name, size in objects(driver, upload_id).items() if name.startswith("chunk-")}


def age(driver: StorageDriver, upload_id: str, seconds: int) -> None:
    """Move a session's start ``seconds`` into the past."""
    info = orjson.loads(driver.get_content(keys.upload_info(upload_id)))
    info["started_at"] -= seconds * 1000
    driver.put_content(keys.upload_info(upload_id), orjson.dumps(info))


def append(store: ObjectUploadStore, upload_id: str, data: bytes, start: int | None = None) -> int:
    """One PATCH: hold the session, append ``data``."""
    with store.session(upload_id) as session:
        return session.append(io.BytesIO(data), start, len(data))
