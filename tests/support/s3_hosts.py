"""Registry hosts on one S3 bucket and one Redis: each a real ``registry-ext serve`` (its own gunicorn
master, its own local scratch folder), standing for separate machines."""
from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.e2e_server import RegistryServer


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
