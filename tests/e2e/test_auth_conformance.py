"""The OCI conformance suites (shared/tools/oci-conformance) against a registry with access control on,
given credentials: both schemes, both suites. Every write of the run must be made as the suite's user.

The suites read ``OCI_USERNAME``/``OCI_PASSWORD`` (v1.1.1: reggie; main: its ``LoginUser``/``LoginPass``)
and follow the Basic or Bearer challenge themselves. The binaries are looked for in
``$OCI_CONFORMANCE_DIR``, else in ``shared/tools/oci-conformance`` next to this repository (or next to
its parent folder, for a git worktree); without them the tests skip, saying so.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import bcrypt
import pytest

from tests.support.e2e_server import RegistryServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [Path(os.environ["OCI_CONFORMANCE_DIR"])] if os.environ.get("OCI_CONFORMANCE_DIR") else [
    up / "shared" / "tools" / "oci-conformance" for up in (ROOT.parent, ROOT.parent.parent)]  # clone, worktree
TOOLS = next((path for path in _CANDIDATES if (path / "run.sh").exists()), _CANDIDATES[0])


def _suite(which: str) -> Path:
    binary = TOOLS / f"conformance-{which}"
    if not (TOOLS / "run.sh").exists() or not binary.exists():
        pytest.skip(f"the OCI conformance suite is not at {TOOLS} (set OCI_CONFORMANCE_DIR); "
                    "see shared/tools/oci-conformance/README.md")
    return binary


@pytest.mark.parametrize("scheme", ["basic", "token"])
@pytest.mark.parametrize("which", ["v1.1.1", "main"])
def test_conformance_with_credentials(tmp_path, scheme, which):
    _suite(which)
    hashed = bcrypt.hashpw(b"conf-pw", bcrypt.gensalt(5)).decode()
    (tmp_path / "htpasswd").write_text(f"conformance:{hashed}\n")
    config = tmp_path / "registry.toml"
    config.write_text(
        f'[auth]\nscheme = "{scheme}"\nhtpasswd = "{tmp_path / "htpasswd"}"\naudit_log = "{tmp_path / "audit.log"}"\n'
        'catalog = ["conformance"]\nrules = [ { repository = "**", who = ["conformance"], actions = ["*"] } ]\n')
    server = RegistryServer(tmp_path / "server", env={"REGISTRY_EXT_CONFIG": str(config)})
    server.start()
    try:
        env = dict(os.environ, OCI_USERNAME="conformance", OCI_PASSWORD="conf-pw")
        result = subprocess.run(["bash", str(TOOLS / "run.sh"), which, server.url, str(tmp_path / "results")],
                                capture_output=True, text=True, env=env, timeout=600)
    finally:
        server.close()
    log = (tmp_path / "results" / "log.txt").read_text(errors="replace")
    assert result.returncode == 0, f"{result.stdout}\n{log[-6000:]}"
    lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    writes = [line for line in lines if line["event"] == "write"]
    assert len(writes) > 50 and {line["user"] for line in writes} == {"conformance"}
    assert {line["scheme"] for line in writes} == {"basic" if scheme == "basic" else "bearer"}
