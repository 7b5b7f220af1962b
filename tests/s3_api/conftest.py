"""The API tests again, with the registry's storage in a bucket of a real S3 server (Ceph RGW).

``settings`` is the root conftest's, except ``[storage]``: driver ``s3``, a new key prefix in one bucket
per test run, and a ``part_size`` of S3's 5 MiB minimum so that a few MiB exercise multipart uploads and
server-side part copies. Each module here imports one module of tests/api/ unchanged (one each: their
fixtures share names). Only tests that look at the registry through HTTP are imported: the ones that
open files under the storage root or hook the filesystem store (test_upload_sessions.py,
test_tag_history.py, test_upload_races.py, ...) describe the filesystem store; the object stores' own
races and expiry are in tests/storage_object/.
"""
from __future__ import annotations

import itertools
import uuid

import pytest

from registry_ext.config import load_settings
from tests.api.conftest import clock  # noqa: F401 - the API tests' fixture, for the imported tests

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def s3_bucket(s3_server):
    return s3_server.new_bucket("api")


@pytest.fixture
def settings(tmp_path, redis_server, s3_server, s3_bucket):
    n = next(_prefixes)
    storage = s3_server.storage_settings(s3_bucket, f"t{n}", part_size=5 * 1024 * 1024)
    return load_settings(
        data={
            "storage": dict(storage, root=str(tmp_path / "scratch")),
            "redis": {"url": redis_server, "key_prefix": f"s{n}x{uuid.uuid4().hex[:6]}"},
        },
        environ={},
    )
