"""The pull-through mirror's end-to-end world: real upstream registries and our mirror in front.

- ``Upstream``: one Debian ``docker-registry`` (CNCF distribution 2.8) standing for one registry host,
  on its own loopback port and data dir; ``kill()`` (SIGKILL) and ``start()`` again keep both.
- ``Image`` / ``make_image``: an OCI image (config + layers + manifest), pushed with ``push_image``
  over the plain OCI API. Different upstreams get DIFFERENT images under the SAME name.
- ``mirror_toml``: the ``[proxy]`` section naming the upstreams (docs/mirror.md).
- ``start_mirror``: ``registry-ext serve`` (gunicorn, 2 workers, the session Redis) with that config.
- ``pull_blob``: a blob through the mirror, streamed, as (sha256 digest, size).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.peer import start_peer
from tests.support.e2e_oci import gzip_bytes, make_tar
from tests.support.e2e_server import RegistryServer
from tests.support.servers import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TIMEOUT = 60


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Upstream:
    """``docker-registry`` on a fixed loopback port and data dir, restartable after a SIGKILL."""

    def __init__(self, workdir: Path, name: str):
        self.name = name
        self.data_dir = Path(workdir) / f"upstream-{name}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> Upstream:
        assert self.server is None or not self.server.alive(), "already running"
        self.server = start_peer(port=self.port, data_dir=str(self.data_dir))
        return self

    def kill(self) -> None:
        """SIGKILL: the upstream dies as a crashed host does, mid-answer."""
        assert self.server is not None
        os.killpg(self.server.pgid, signal.SIGKILL)
        self.server.proc.wait(10)
        self.server.stop()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass
class Image:
    """An OCI image: its manifest bytes and every blob it names, by digest."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)  # layer digests, in manifest order
    config: str = ""

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def make_image(label: str, layer_sizes: tuple[int, ...] = (), *, tar_layers: int = 1, seed: int = 0) -> Image:
    """``tar_layers`` small gzip'd tar layers whose file names ``label`` (real clients can unpack them),
    then one layer of random bytes per ``layer_sizes`` entry (big layers for the fault tests)."""
    layers = [gzip_bytes(make_tar({f"{label}-{i}.txt": f"{label} layer {i}\n".encode()}))
              for i in range(tar_layers)]
    rng = random.Random(f"{label}/{seed}")
    layers += [rng.randbytes(size) for size in layer_sizes]
    diff_ids = [sha256(layer) for layer in layers]  # not unpacked anywhere: any digest list will do
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"label": label}},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)} for layer in layers],
        "annotations": {"test.label": label},
    }, indent=2).encode()
    blobs = {sha256(config): config, **{sha256(layer): layer for layer in layers}}
    return Image(manifest, blobs, [sha256(layer) for layer in layers], sha256(config))


def push_image(base_url: str, repo: str, tag: str, image: Image) -> None:
    """Push every blob (monolithic POST + PUT) and the manifest under ``tag``."""
    with requests.Session() as sess:
        sess.trust_env = False
        for digest, data in image.blobs.items():
            resp = sess.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=TIMEOUT)
            assert resp.status_code == 202, (resp.status_code, resp.text)
            location = resp.headers["Location"]
            location = location if "://" in location else base_url + location
            sep = "&" if "?" in location else "?"
            resp = sess.put(f"{location}{sep}digest={digest}", data=data, timeout=TIMEOUT,
                            headers={"Content-Type": "application/octet-stream"})
            assert resp.status_code == 201, (resp.status_code, resp.text)
        resp = sess.put(f"{base_url}/v2/{repo}/manifests/{tag}", data=image.manifest, timeout=TIMEOUT,
                        headers={"Content-Type": OCI_MANIFEST})
        assert resp.status_code == 201, (resp.status_code, resp.text)


def mirror_toml(upstreams: dict[str, dict], **proxy) -> str:
    """The ``[proxy]`` section: ``upstreams`` maps a name to its keys (``hosts``, ``urls``, ...)."""
    lines = ["[proxy]"] + [f"{key} = {json.dumps(value)}" for key, value in proxy.items()]
    for name, keys in upstreams.items():
        lines.append(f"\n[proxy.upstreams.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def start_mirror(workdir: Path, redis_url: str, toml: str, *, workers: int = 2,
                 share_with: RegistryServer | None = None, share_data_dir: bool = True) -> RegistryServer:
    """``registry-ext serve`` with ``toml`` as its configuration file (started; ``close()`` it).
    ``share_with``: another host of the same registry (its Redis keys, and its data dir unless
    ``share_data_dir`` is false: hosts of an S3 registry share the bucket, not a folder)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "registry.toml"
    config.write_text(toml)
    prefix = share_with.key_prefix if share_with is not None else f"px{uuid.uuid4().hex[:10]}"
    server = RegistryServer(workdir, redis_url=redis_url, key_prefix=prefix,
                            workers=workers, env={"REGISTRY_EXT_CONFIG": str(config)})
    if share_with is not None and share_data_dir:
        server.data_dir = share_with.data_dir
    server.start()
    return server


def pull_blob(url: str, *, timeout: float = TIMEOUT) -> tuple[str, int]:
    """GET a blob streaming: (sha256 of what came, bytes). Raises on a status other than 200 or a cut body."""
    hasher, size = hashlib.sha256(), 0
    with requests.get(url, stream=True, timeout=timeout) as resp:
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:500])
        for piece in resp.iter_content(1 << 16):
            hasher.update(piece)
            size += len(piece)
    return "sha256:" + hasher.hexdigest(), size


def stored_blob_files(data_dir: Path, digest: str) -> list[Path]:
    """Every file under the mirror's data dir whose path names the blob's hex digest."""
    hexdigest = digest.split(":", 1)[1]
    return [p for p in Path(data_dir).rglob("*") if hexdigest in str(p) and p.is_file()]


def run(cmd: list[str], timeout: float = 120, check: bool = True, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {' '.join(cmd)}\n--- stdout ---\n{result.stdout[-3000:]}"
                             f"\n--- stderr ---\n{result.stderr[-5000:]}")
    return result
