"""Registry hosts on one S3 bucket and one Redis: each a real ``registry-ext serve`` (its own gunicorn
master, its own local scratch folder), standing for separate machines; ``Front``: the shipped
multi-host nginx site in front of them."""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import requests

from tests.support.e2e_deploy import render_main
from tests.support.e2e_server import RegistryServer
from tests.support.servers import free_port


def s3_config(path: Path, server, bucket: str, prefix: str = "", extra_toml: str = "", **s3_extra) -> Path:
    """Write a TOML file naming ``bucket`` on the S3 server (then ``extra_toml``); return its path."""
    table = server.storage_settings(bucket, prefix, **s3_extra)["s3"]
    lines = ["[storage]", 'driver = "s3"', "", "[storage.s3]"]
    for key, value in table.items():
        rendered = ("true" if value else "false") if isinstance(value, bool) else \
            (str(value) if isinstance(value, int) else f'"{value}"')
        lines.append(f"{key} = {rendered}")
    path.write_text("\n".join(lines) + "\n\n" + extra_toml)
    return path


def s3_hosts(workdir: Path, s3_server, redis_url: str, count: int = 2, workers: int = 2, extra_toml: str = "",
             **s3_extra) -> list[RegistryServer]:
    """``count`` servers (not started) sharing a new bucket and one key prefix in ``redis_url``, configured
    with ``extra_toml`` too."""
    bucket = s3_server.new_bucket("hosts")
    config = s3_config(workdir / "registry.toml", s3_server, bucket, extra_toml=extra_toml, **s3_extra)
    prefix = f"h{uuid.uuid4().hex[:8]}"
    return [RegistryServer(workdir / f"host{n}", redis_url=redis_url, key_prefix=prefix, workers=workers,
                           env={"REGISTRY_EXT_CONFIG": str(config)}) for n in range(count)]


MULTI_HOST_SITE = Path(__file__).resolve().parents[2] / "deploy" / "multi-host" / "nginx.conf"


class Front:
    """Real nginx running deploy/multi-host/nginx.conf (the shipped site) in front of ``hosts``."""

    def __init__(self, workdir: Path, hosts: list[RegistryServer]):
        if shutil.which("nginx") is None:
            raise AssertionError("nginx is not installed (apt-get install nginx)")
        self.dir = workdir
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        text = MULTI_HOST_SITE.read_text()
        swaps = [("listen 80;", f"listen 127.0.0.1:{self.port};"),
                 ("access_log /var/log/nginx/registry-ext.access.log", f"access_log {workdir}/logs/access.log")]
        swaps += [(f"server registry-{n + 1}:5000;", f"server 127.0.0.1:{host.port};") for n, host in enumerate(hosts)]
        swaps += [(f"server registry-{n + 1}:5001;", f"server 127.0.0.1:{free_port()};") for n in range(len(hosts))]
        for old, new in swaps:
            assert text.count(old) == 1, f"{MULTI_HOST_SITE} must contain {old!r} exactly once"
            text = text.replace(old, new)
        (workdir / "registry-ext.conf").write_text(text)
        (workdir / "nginx.conf").write_text(render_main())
        with open(workdir / "logs" / "nginx.out", "wb") as out:
            self.proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{self.url}/v2/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("nginx did not answer: "
                                     + (self.dir / "logs" / "nginx.out").read_text(errors="replace")[-2000:])
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
