"""The `registry-ext` command as a user runs it: operational errors are one line, never a traceback.

Each case runs the installed console script in a subprocess and checks the
exit code (2: usage or configuration, 1: operational), that stderr is
exactly ``registry-ext: error: <what failed>; <what to do>`` and that
nothing was left running.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.e2e_server import cli_path, processes_mentioning
from tests.support.servers import free_port
from registry_ext import __version__

pytestmark = pytest.mark.e2e
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_EXT_")}
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=60,
                          env=dict(environ, **(env or {})), cwd=cwd, stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    """The single error line, after checking exit code, format and the expected words."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("registry-ext: error: ") and "; " in line, line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert result.stdout == ""
    return line


def test_version_matches_the_package():
    result = run("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"registry-ext, version {__version__}\n"
    assert f"version = {__version__}\n" in SETUP_CFG.read_text()


def test_reindex_with_redis_unreachable(tmp_path):
    port = free_port()  # nothing listens there
    line = one_line_error(run("reindex", "--data-dir", str(tmp_path), "--redis-url", f"redis://127.0.0.1:{port}"),
                          1, f"Redis at redis://127.0.0.1:{port} failed", "Connection refused",
                          "check that redis-server runs there")
    assert "Traceback" not in line


def test_check_with_a_socket_that_does_not_exist(tmp_path):
    sock = tmp_path / "no" / "redis.sock"
    one_line_error(run("check", "--data-dir", str(tmp_path), "--redis-url", f"unix://{sock}"),
                   1, f"Redis at unix://{sock} failed", "No such file or directory", "--redis-url")


def test_relative_unix_socket_is_a_configuration_error(tmp_path):
    for command in ("check", "reindex", "serve", "check-config"):
        result = run(command, "--data-dir", str(tmp_path), "--redis-url", "unix://data/redis/redis.sock")
        one_line_error(result, 2, "'unix://data/redis/redis.sock' is not an absolute socket path",
                       "unix:///abs/path/redis.sock")
    assert not (tmp_path / "redis").exists()  # serve refused before starting anything


def test_reindex_without_redis_url_and_bad_config_are_usage_errors(tmp_path):
    one_line_error(run("reindex", "--data-dir", str(tmp_path)), 2, "reindex needs --redis-url",
                   "unix:///ABSOLUTE/DATA-DIR/redis/redis.sock")
    config = tmp_path / "registry.toml"
    config.write_text("[server]\nprot = 5000\n")
    one_line_error(run("check-config", "--config", str(config)), 2, "unknown key server.prot",
                   "fix the configuration")


def test_serve_on_a_busy_port_fails_at_once(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = run("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data"))
        elapsed = time.monotonic() - started
    one_line_error(result, 1, f"cannot listen on 127.0.0.1:{port} (Address already in use)",
                   "choose another --port")
    assert elapsed < 20  # gunicorn alone retries for 5 s and logs each attempt
    assert not (tmp_path / "data" / "redis").exists()  # no embedded redis-server was started
    assert processes_mentioning(str(tmp_path), name="redis-server") == {}


def test_serve_on_an_address_of_another_machine(tmp_path):
    one_line_error(run("serve", "--host", "192.0.2.1", "--port", str(free_port()), "--data-dir", str(tmp_path)),
                   1, "cannot listen on 192.0.2.1:", "give an address of this machine as --host")


def test_serve_with_a_data_dir_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("in the way")
    one_line_error(run("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "file" / "data")),
                   1, f"data directory {tmp_path / 'file' / 'data'} is not writable (Not a directory)",
                   "choose a writable directory with --data-dir")


def test_serve_without_redis_server_installed(tmp_path):
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    one_line_error(run("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
                       env={"PATH": str(empty_path)}),
                   1, "redis-server not found on PATH", "apt-get install redis-server", "--redis-url")


def test_serve_with_a_socket_path_too_long_for_the_embedded_redis(tmp_path):
    data = tmp_path / ("d" * 110)
    one_line_error(run("serve", "--port", str(free_port()), "--data-dir", str(data)),
                   1, "socket path", "is longer than 107 bytes", "use a shorter --data-dir")
    assert processes_mentioning(str(tmp_path), name="redis-server") == {}
