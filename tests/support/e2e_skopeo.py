"""Run the real ``skopeo`` binary with an isolated HOME (no auth files, no
blob-info cache shared between tests) and readable failures."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


class Skopeo:
    def __init__(self, home: Path, registry=None):
        binary = shutil.which("skopeo")
        if binary is None:
            pytest.fail("skopeo is not installed (apt-get install skopeo)")
        self.binary = binary
        self.registry = registry
        self.home = Path(home)
        for sub in ("run", "tmp", "config"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.home / "run", 0o700)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.home / "run"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "TMPDIR": str(self.home / "tmp"),
        }
        self.calls: list[subprocess.CompletedProcess] = []

    def run(self, *args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
        cmd = [self.binary, "--insecure-policy", "--debug", *args]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                                    timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"timeout after {timeout}s: {' '.join(cmd)}\n"
                                 f"{(exc.stderr or '')[-4000:]}\n{self._server()}") from None
        self.calls.append(result)
        if check and result.returncode != 0:
            raise AssertionError(
                f"skopeo failed (exit {result.returncode}): {' '.join(cmd)}\n"
                f"--- stdout ---\n{result.stdout[-2000:]}\n"
                f"--- stderr (debug, tail) ---\n{result.stderr[-6000:]}\n{self._server()}")
        return result

    def json(self, *args: str):
        out = self.run(*args).stdout
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(f"skopeo {' '.join(args)} printed non-JSON: {out[:2000]!r}") from None

    def _server(self) -> str:
        if self.registry is None:
            return ""
        diagnostics = getattr(self.registry, "diagnostics", None)
        return f"--- registry ---\n{diagnostics()}" if diagnostics else ""
