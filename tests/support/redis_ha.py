"""Redis high-availability set-ups for the tests: a Sentinel group and a 3-primary Cluster.

Real servers on loopback (Debian's redis-server and redis-sentinel), persistence off, each in
its own folder. ``SentinelGroup`` is one primary, one replica and one sentinel (quorum 1,
``down-after-milliseconds`` 1000) so a killed primary is replaced within a few seconds.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

FAST_FAILOVER = {"down-after-milliseconds": 1000, "failover-timeout": 4000, "parallel-syncs": 1}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (apt-get install redis-server)")
    return found


def _wait(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _server(folder: Path, port: int, *extra: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: redis.Redis(port=port).ping(), f"redis-server on {port}")
    return proc


class SentinelGroup:
    master_name = "regext"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.ports = [free_port(), free_port()]
        self.sentinel_port = free_port()
        self.procs: dict[int, subprocess.Popen] = {}

    def start(self) -> "SentinelGroup":
        first, second = self.ports
        self.procs[first] = _server(self.workdir / "a", first)
        self.procs[second] = _server(self.workdir / "b", second, "--replicaof", "127.0.0.1", str(first))
        conf = self.workdir / "sentinel.conf"
        lines = [f"port {self.sentinel_port}", "bind 127.0.0.1", f"dir {self.workdir}",
                 f"sentinel monitor {self.master_name} 127.0.0.1 {first} 1"]
        lines += [f"sentinel {k} {self.master_name} {v}" for k, v in FAST_FAILOVER.items()]
        conf.write_text("\n".join(lines) + "\n")
        # redis-sentinel is redis-server in sentinel mode (Debian's redis-sentinel package only links it)
        self.procs[self.sentinel_port] = subprocess.Popen([_binary("redis-server"), str(conf), "--sentinel"],
                                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self.master_port() == first, "the sentinel to see the primary")
        _wait(lambda: redis.Redis(port=second).info("replication")["master_link_status"] == "up",
              "the replica to sync")
        return self

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.master_name}"

    def master_port(self) -> int:
        host, port = redis.Redis(port=self.sentinel_port).execute_command(
            "SENTINEL", "get-master-addr-by-name", self.master_name)
        return int(port)

    def kill_master(self) -> int:
        """SIGKILL the primary; return the port it had."""
        port = self.master_port()
        self.procs[port].kill()
        self.procs[port].wait()
        return port

    def wait_failover(self, old_port: int, timeout: float = 30) -> int:
        _wait(lambda: self.master_port() != old_port, "a failover", timeout)
        return self.master_port()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _cluster_port() -> int:
    """A free port a cluster node accepts: its bus port is port + 10000, so at most 55535."""
    while True:
        port = free_port()
        if port <= 55535:
            return port


class Cluster:
    def __init__(self, workdir: Path, primaries: int = 3):
        self.workdir = workdir
        self.ports = [_cluster_port() for _ in range(primaries)]
        self.procs: list[subprocess.Popen] = []

    def start(self) -> "Cluster":
        for port in self.ports:
            self.procs.append(_server(self.workdir / str(port), port, "--cluster-enabled", "yes",
                                      "--cluster-config-file", f"nodes-{port}.conf",
                                      "--cluster-node-timeout", "2000"))
        subprocess.run([_binary("redis-cli"), "--cluster", "create",
                        *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        for port in self.ports:
            _wait(lambda port=port: "cluster_state:ok" in redis.Redis(port=port).execute_command(
                "CLUSTER", "INFO").decode(), f"cluster node {port} to be ok")
        return self

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
