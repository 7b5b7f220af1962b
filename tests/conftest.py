"""Shared fixtures: a real redis-server per test run, an app per test.

Every test that touches the index talks to a real ``redis-server`` started
here on a free loopback port (persistence off). Each test gets its own key
prefix, so tests never see each other's keys and need no FLUSHALL. Plain
helpers (no fixtures) live in ``tests/support/`` and are imported from there.
"""
from __future__ import annotations

import itertools
import uuid

import pytest
import redis

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.flask_client import BufferedClient
from tests.support.servers import RedisProcess, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """URL of a real redis-server that lives for the whole test run."""
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(10)


_prefixes = itertools.count()


@pytest.fixture
def settings(tmp_path, redis_server):
    """Settings for one test: its own storage root and Redis key prefix."""
    return load_settings(
        data={
            "storage": {"root": str(tmp_path / "data")},
            "redis": {"url": redis_server, "key_prefix": f"t{next(_prefixes)}x{uuid.uuid4().hex[:6]}"},
        },
        environ={},
    )


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    app.test_client_class = BufferedClient
    return app.test_client()


@pytest.fixture
def redis_client(redis_server):
    return redis.Redis.from_url(redis_server)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own, whose data survives a restart (``.kill()``, ``.start()``)."""
    server = RedisProcess(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (Ceph RGW, tests/support/s3server) for the whole test run; started on first use."""
    from tests.support import s3server

    workdir = tmp_path_factory.mktemp("s3")
    try:
        server = s3server.start(workdir)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    s3server.stop(workdir)
