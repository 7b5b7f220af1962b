"""A real S3 server for the tests: Ceph's RADOS Gateway on one node (start.sh / stop.sh beside this file).

``start.sh DIR`` installs Debian's radosgw packages when missing (needs root), starts a throwaway
one-node Ceph cluster under DIR on loopback and prints its endpoint and keys; ``stop.sh DIR``
stops it. These scripts are copies of the team's tool in ``../shared/tools/s3-server`` (its README
has the figures and the known gaps of radosgw 16.2 against AWS).
"""
from __future__ import annotations

import dataclasses
import subprocess
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    dir: Path

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def new_bucket(self, stem: str = "t") -> str:
        name = f"{stem}-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_settings(self, bucket: str, prefix: str = "", **extra) -> dict:
        """The [storage] table of a registry using this server."""
        s3 = {"bucket": bucket, "prefix": prefix, "endpoint_url": self.endpoint, "region": self.region,
              "path_style": True, "access_key": self.access_key, "secret_key": self.secret_key}
        s3.update(extra)
        return {"driver": "s3", "s3": s3}


def start(workdir: Path) -> S3Server:
    """Start (or find running) the server under ``workdir``; fails loudly when it cannot."""
    proc = subprocess.run([str(HERE / "start.sh"), str(workdir)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"S3 server did not start:\n{proc.stderr[-3000:]}")
    env = {}
    for line in (workdir / "s3.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip("'")
    return S3Server(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], env["S3_REGION"], workdir)


def stop(workdir: Path) -> None:
    subprocess.run([str(HERE / "stop.sh"), str(workdir)], capture_output=True, timeout=120)
