"""Shared fixtures: a real redis-server per test run, an app per test.

Every test that touches the index talks to a real ``redis-server`` started
here on a free loopback port (persistence off). Each test gets its own key
prefix, so tests never see each other's keys and need no FLUSHALL.
"""
from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from registry_ext import create_app
from registry_ext.config import load_settings


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """Start a private redis-server; return the process and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)


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


class BufferedClient(FlaskClient):
    """Reads each body fully and closes it, as a WSGI server does (streamed blobs are open files)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = BufferedClient
    return app.test_client()


@pytest.fixture
def redis_client(redis_server):
    return redis.Redis.from_url(redis_server)


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
