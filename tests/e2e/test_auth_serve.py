"""`registry-ext serve` and access control: the open-access warning, a clear error for a missing htpasswd."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest
import requests

from e2e_server import cli_path, free_port

pytestmark = pytest.mark.e2e


def test_serve_warns_in_one_line_when_listening_beyond_loopback_without_auth(tmp_path):
    port = free_port()
    proc = subprocess.Popen([cli_path(), "serve", "--host", "0.0.0.0", "--port", str(port), "--workers", "1",
                             "--data-dir", str(tmp_path / "data")], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        first = proc.stderr.readline()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)  # drains and closes stderr
    assert first.startswith("WARNING: listening on 0.0.0.0 without authentication"), first
    assert f"port {port}" in first and "docs/auth.md" in first


def test_serve_refuses_a_missing_htpasswd_before_starting(tmp_path):
    config = tmp_path / "registry.toml"
    config.write_text(f'[auth]\nscheme = "basic"\nhtpasswd = "{tmp_path / "missing"}"\n')
    result = subprocess.run([cli_path(), "serve", "--config", str(config), "--port", str(free_port()),
                             "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"Error: auth: [Errno 2] No such file or directory: '{tmp_path / 'missing'}'" in result.stderr
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr
