"""Open the configured storage: a filesystem root, or the object stores on S3 with leases in Redis.

One place turns ``[storage]`` into a ``Storage``, for the server and for every
command, so they cannot disagree about where the registry's bytes are.
"""
from __future__ import annotations

import os

from registry_ext.config import ConfigError, Settings
from registry_ext.index import Index
from registry_ext.storage import Storage, open_object_storage, open_storage
from registry_ext.storage.identity import Identity, load_identity
from registry_ext.storage.layout import Layout


def open_configured_storage(settings: Settings, index: Index | None) -> Storage:
    """The storage ``settings`` name. On S3 the index (its Redis) is required: it holds the
    repository and upload leases every host shares (index/store_locks.py), and gc's lease and
    touch time per blob (index/blob_guard.py)."""
    s, limits = settings.storage, settings.limits
    if s.driver == "filesystem":
        return open_storage(s.root, limits.upload_ttl_seconds, limits.upload_idle_seconds)
    if index is None:
        raise ConfigError("storage.driver = \"s3\" needs redis.url: the hosts share their locks there")
    from registry_ext.index.blob_guard import BlobGuard, touch_ttl
    from registry_ext.index.store_locks import StoreLocks
    from registry_ext.storage.driver.s3 import S3Driver
    from registry_ext.storage.driver.s3_settings import s3_options

    scratch = os.path.join(s.root, "tmp")
    os.makedirs(scratch, exist_ok=True)
    driver = S3Driver(s3_options(s.s3, ConfigError), spool_dir=scratch)
    locks = StoreLocks(index.client, settings.redis.key_prefix)
    guard = BlobGuard(index.client, settings.redis.key_prefix,
                      touch_ttl_s=touch_ttl(settings.gc.grace_period_seconds))
    return open_object_storage(driver, s.root, locks, limits.upload_ttl_seconds, limits.upload_idle_seconds,
                               guard)


def configured_identity(settings: Settings, create: bool = False) -> Identity:
    """The registry's identity where ``settings`` keep the data, without opening the rest of storage
    (the feed waiter reads only this). Raises FileNotFoundError when there is none and not ``create``."""
    s = settings.storage
    if s.driver == "filesystem":
        return load_identity(Layout(s.root), create)
    from registry_ext.storage.driver.s3 import S3Driver
    from registry_ext.storage.driver.s3_settings import s3_options
    from registry_ext.storage.object.root import load_identity as load_object_identity

    return load_object_identity(S3Driver(s3_options(s.s3, ConfigError)), create)
