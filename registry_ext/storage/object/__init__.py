"""Registry records on an object store (S3), through the storage driver seam.

The filesystem stores (``storage/blobs.py``, ``repos.py``, ``uploads.py``,
``journal.py``) use what a local filesystem gives: rename, append, flock,
hard links, mtimes. The classes here keep the same records at the same
relative paths (keys.py) using only ``StorageDriver`` calls, so they run on
S3 and on several hosts at once; what a filesystem lock did is done by a
lease in Redis, injected as ``Locks`` (storage/locks.py), so storage still
never speaks Redis itself. The stores run on any driver: the component
tests run them on the filesystem driver and on a real S3 server.
"""
from __future__ import annotations


class NotSupportedOnObjectStorage(Exception):
    """An operation the object stores cannot do as built (garbage collection's take without a guard)."""

    def __init__(self, operation: str):
        super().__init__(f"{operation} is not supported on object storage")
        self.operation = operation
