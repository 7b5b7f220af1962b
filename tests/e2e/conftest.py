"""Fixtures that run the real ``registry-ext serve`` (gunicorn, 2 workers).

``registry``           -- external Redis (the session ``redis_server``, with a
                          unique ``--key-prefix``).
``embedded_registry``  -- no ``--redis-url``: serve starts its own redis-server
                          with persistence under the data dir.

Both yield a ``tests.support.e2e_server.RegistryServer`` (``.url``, ``.host``,
``.data_dir``, ``.access_log``, ``.restart()``) and stop it with SIGTERM at
teardown, failing if it does not go away cleanly.
"""
from __future__ import annotations

import itertools
import shutil
import uuid

import pytest

from tests.support.e2e_server import RegistryServer, cli_path

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _e2e_prerequisites():
    """Every e2e test needs the console script; fail (not skip) without it."""
    cli_path()


@pytest.fixture
def registry(redis_server, tmp_path):
    server = RegistryServer(tmp_path / "server", redis_url=redis_server,
                            key_prefix=f"e2e{next(_counter)}x{uuid.uuid4().hex[:8]}")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def embedded_registry(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    server = RegistryServer(tmp_path / "server")
    try:
        server.start()
        yield server
    finally:
        server.close()
