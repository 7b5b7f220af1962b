"""Fixtures that run the real ``registry-ext serve`` (gunicorn, 2 workers).

``registry``           -- external Redis (the session ``redis_server``, with a
                          unique ``--key-prefix`` when the CLI offers one,
                          otherwise a private redis-server per test).
``embedded_registry``  -- no ``--redis-url``: serve starts its own redis-server
                          with persistence under the data dir.

Both yield an ``e2e_server.RegistryServer`` (``.url``, ``.host``,
``.data_dir``, ``.access_log``, ``.restart()``) and stop it with SIGTERM at
teardown, failing if it does not go away cleanly.
"""
from __future__ import annotations

import itertools
import shutil
import uuid
from pathlib import Path

import pytest

from e2e_server import RegistryServer, cli_path, serve_supports

_ROOT_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"
_counter = itertools.count()


def _root_conftest(config):
    """The module tests/conftest.py (for ``start_redis``)."""
    mod = config.pluginmanager.get_plugin(str(_ROOT_CONFTEST))
    if mod is None:
        for plugin in config.pluginmanager.get_plugins():
            if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == _ROOT_CONFTEST:
                return plugin
        pytest.fail("tests/conftest.py is not loaded")
    return mod


@pytest.fixture(autouse=True)
def _e2e_prerequisites():
    """Every e2e test needs the console script; fail (not skip) without it."""
    cli_path()


@pytest.fixture
def registry(request, tmp_path):
    workdir = tmp_path / "server"
    redis_proc = None
    if serve_supports("--key-prefix"):
        redis_url = request.getfixturevalue("redis_server")
        key_prefix = f"e2e{next(_counter)}x{uuid.uuid4().hex[:8]}"
    else:
        redis_dir = tmp_path / "redis"
        redis_dir.mkdir()
        redis_proc, redis_url = _root_conftest(request.config).start_redis(redis_dir)
        key_prefix = None
    server = RegistryServer(workdir, redis_url=redis_url, key_prefix=key_prefix)
    try:
        server.start()
        yield server
    finally:
        try:
            server.close()
        finally:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(10)


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
