"""Fixtures of the object-store component tests: each store on the filesystem driver and on a real S3
server (Ceph RGW, as tests/contract/test_driver.py builds it), locks as Redis leases on the real
redis-server, and a filesystem store beside them to compare bytes with."""
from __future__ import annotations

import itertools
import uuid

import pytest
import redis

from registry_ext.index.blob_guard import BlobGuard
from registry_ext.index.store_locks import StoreLocks
from registry_ext.storage.driver.base import StorageDriver
from registry_ext.storage.driver.filesystem import FilesystemDriver
from registry_ext.storage.driver.s3 import MIN_PART, S3Driver, S3Options
from registry_ext.storage.layout import Layout
from tests.support.object_uploads import store_for

_prefixes = itertools.count()


@pytest.fixture(params=["filesystem", "s3"])
def driver(request, tmp_path) -> StorageDriver:
    if request.param == "filesystem":
        return FilesystemDriver(tmp_path / "root")
    server = request.getfixturevalue("s3_server")
    bucket = getattr(request.config, "object_stores_bucket", None)
    if bucket is None:
        bucket = request.config.object_stores_bucket = server.new_bucket("objstores")
    options = S3Options(bucket=bucket, prefix=f"p{uuid.uuid4().hex[:10]}", endpoint_url=server.endpoint,
                        region=server.region, path_style=True, access_key=server.access_key,
                        secret_key=server.secret_key, part_size=MIN_PART, redirect=True)
    return S3Driver(options, spool_dir=str(tmp_path))


@pytest.fixture
def lock_prefix() -> str:
    return f"os{next(_prefixes)}x{uuid.uuid4().hex[:6]}"


def store_locks(redis_server: str, prefix: str, wait_s: float = 10.0) -> StoreLocks:
    """The locks of one host (its own Leases), on the shared Redis."""
    return StoreLocks(redis.Redis.from_url(redis_server, decode_responses=True), prefix, ttl_ms=3000, wait_s=wait_s)


@pytest.fixture
def locks(redis_server, lock_prefix) -> StoreLocks:
    return store_locks(redis_server, lock_prefix)


def blob_guard(redis_server: str, prefix: str, wait_s: float = 10.0) -> BlobGuard:
    """gc's per-blob guard of one host (its own Leases), on the shared Redis."""
    return BlobGuard(redis.Redis.from_url(redis_server, decode_responses=True), prefix, ttl_ms=3000, wait_s=wait_s)


@pytest.fixture
def guard(redis_server, lock_prefix) -> BlobGuard:
    return blob_guard(redis_server, lock_prefix)


@pytest.fixture
def upload_redis(redis_server) -> redis.Redis:
    return redis.Redis.from_url(redis_server, decode_responses=True)


@pytest.fixture
def worker(driver, upload_redis, lock_prefix):
    """An upload store factory (tests/support/object_uploads.py): each call is another worker on the same
    driver and Redis."""
    return lambda blobs=None: store_for(driver, upload_redis, lock_prefix, blobs)


@pytest.fixture
def store(worker):
    return worker()


@pytest.fixture
def layout(tmp_path) -> Layout:
    """A filesystem store's root beside the driver's, for byte comparisons."""
    return Layout(tmp_path / "fsroot")


def tree(driver: StorageDriver, top: str) -> dict[str, bytes]:
    """Every object below ``top`` with its bytes."""
    return {info.path: driver.get_content(info.path) for info in driver.walk(top)}


def fs_tree(layout: Layout, top: str) -> dict[str, bytes]:
    """Every file below ``top`` of a filesystem root (the repository lock files aside)."""
    base = layout.root / top
    return {path.relative_to(layout.root).as_posix(): path.read_bytes()
            for path in sorted(base.rglob("*")) if path.is_file() and path.name != "_lock"}
