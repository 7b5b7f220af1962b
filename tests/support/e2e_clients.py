"""Real registry clients for the access-control tests: podman and containerd (``ctr``), each isolated
in temporary folders (storage, auth files, containerd's root, state and socket)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed (apt-get install {package})")
    return path


def _run(cmd: list[str], env: dict, check: bool, timeout: float) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"timeout after {timeout}s: {' '.join(cmd)}\n{exc.stderr}") from None
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {' '.join(cmd)}\n--- stdout ---\n{result.stdout[-2000:]}"
                             f"\n--- stderr ---\n{result.stderr[-4000:]}")
    return result


class Podman:
    """podman with its own storage (vfs), run root, home and auth file."""

    def __init__(self, home: Path):
        self.binary = _need("podman", "podman")
        self.home = Path(home)
        for sub in ("root", "home", "tmp"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self.runroot = tempfile.mkdtemp(prefix="podrun-")  # podman wants a run root under 50 characters
        self.authfile = self.home / "auth.json"
        self.authfile.write_text('{"auths": {}}')  # podman refuses an --authfile that does not exist
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home / "home"),
                    "XDG_RUNTIME_DIR": self.runroot, "TMPDIR": str(self.home / "tmp")}

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [self.binary, "--root", str(self.home / "root"), "--runroot", self.runroot,
               "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", *args]
        return _run(cmd, self.env, check, timeout)

    def login(self, host: str, user: str, password: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("login", "--tls-verify=false", "--authfile", str(self.authfile), "-u", user,
                        "-p", password, host, check=check)

    def remote(self, verb: str, ref: str, check: bool = True) -> subprocess.CompletedProcess:
        """``pull`` or ``push`` with the auth file."""
        return self.run(verb, "--tls-verify=false", "--authfile", str(self.authfile), ref, check=check)

    def close(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)


class Containerd:
    """A private containerd (its own root, state and socket; CRI off) and ``ctr`` against it."""

    def __init__(self, workdir: Path):
        self.daemon = _need("containerd", "containerd")
        self.ctr = _need("ctr", "containerd")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "containerd.sock"
        config = self.dir / "config.toml"
        config.write_text(
            f'version = 2\nroot = "{self.dir / "root"}"\nstate = "{self.dir / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            '[debug]\n  address = ""\n')
        self.log = self.dir / "containerd.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([self.daemon, "--config", str(config)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while _run([self.ctr, "--address", str(self.socket), "version"], dict(os.environ), False, 10).returncode:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"containerd did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return _run([self.ctr, "--address", str(self.socket), *args], dict(os.environ), check, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
