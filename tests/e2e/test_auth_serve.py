"""`registry-ext serve` and access control: the open-access warning, a clear error for a missing htpasswd,
``--htpasswd`` (the README's one-line switch)."""
from __future__ import annotations

import hashlib
import signal
import subprocess
import time

import bcrypt
import pytest
import requests

from tests.support.e2e_server import RegistryServer, cli_path
from tests.support.servers import free_port

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
    assert f"registry-ext: error: auth: [Errno 2] No such file or directory: '{tmp_path / 'missing'}'" in result.stderr
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr


class HtpasswdServer(RegistryServer):
    def __init__(self, workdir, htpasswd):
        super().__init__(workdir, workers=1)
        self.htpasswd = htpasswd

    def command(self) -> list[str]:
        return super().command() + ["--htpasswd", str(self.htpasswd)]


def test_serve_htpasswd_turns_basic_auth_on_in_one_option(tmp_path):
    hashed = bcrypt.hashpw(b"alice-pw", bcrypt.gensalt(5)).decode()
    (tmp_path / "htpasswd").write_text(f"alice:$2y${hashed[4:]}\n")
    server = HtpasswdServer(tmp_path / "server", tmp_path / "htpasswd")
    server.start()
    try:
        resp = requests.get(f"{server.url}/v2/", timeout=10)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Basic ")
        blob = b"pushed by alice"
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        resp = requests.post(f"{server.url}/v2/any/repo/blobs/uploads/?digest={digest}", data=blob,
                             auth=("alice", "alice-pw"), timeout=10)
        assert resp.status_code == 201
        assert requests.get(f"{server.url}/v2/any/repo/blobs/{digest}", timeout=10).status_code == 401
        assert requests.get(f"{server.url}/v2/any/repo/blobs/{digest}", auth=("alice", "alice-pw"),
                            timeout=10).content == blob
    finally:
        server.close()
