"""Small OCI helpers for the end-to-end tests: digests, raw HTTP uploads
(every request on a fresh connection) and an on-disk OCI image layout."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

MANIFEST_V1 = "application/vnd.oci.image.manifest.v1+json"
INDEX_V1 = "application/vnd.oci.image.index.v1+json"
CONFIG_V1 = "application/vnd.oci.image.config.v1+json"
LAYER_TGZ = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_V1 = "application/vnd.oci.empty.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
TIMEOUT = 60


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def fresh(method: str, url: str, **kwargs) -> requests.Response:
    """One request on a brand-new TCP connection that is closed afterwards."""
    headers = dict(kwargs.pop("headers", None) or {})
    headers.setdefault("Connection", "close")
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("allow_redirects", False)
    with requests.Session() as session:
        resp = session.request(method, url, headers=headers, **kwargs)
        if not kwargs.get("stream"):
            resp.close()
        return resp


def describe(resp: requests.Response) -> str:
    """Request and response summary for assertion messages."""
    req = resp.request
    try:
        body = resp.content[:500]
    except (RuntimeError, requests.RequestException):
        body = b"<stream>"
    req_headers = {k: v for k, v in req.headers.items() if k.lower() != "user-agent"}
    return (f"{req.method} {req.url} headers={req_headers} -> {resp.status_code} "
            f"headers={dict(resp.headers)} body={body!r}")


def expect(resp: requests.Response, status: int, context: str = "") -> requests.Response:
    assert resp.status_code == status, (
        f"{context}expected HTTP {status}, got {resp.status_code}: {describe(resp)}")
    return resp


def absolute(base_url: str, location: str) -> str:
    return urljoin(base_url + "/", location)


def with_digest(location_url: str, digest: str) -> str:
    """Append ``digest=`` to an upload URL, keeping any existing query."""
    return location_url + ("&" if urlsplit(location_url).query else "?") + f"digest={digest}"


def start_upload(base_url: str, repo: str) -> str:
    """POST a new upload session; return the absolute Location."""
    resp = expect(fresh("POST", f"{base_url}/v2/{repo}/blobs/uploads/",
                        headers={"Content-Length": "0"}), 202, "start upload: ")
    location = resp.headers.get("Location")
    assert location, f"202 without Location: {describe(resp)}"
    return absolute(base_url, location)


def patch_chunk(base_url: str, location: str, start: int, chunk: bytes) -> str:
    """PATCH one chunk with Content-Range; check Range; return next Location."""
    end = start + len(chunk) - 1
    resp = fresh("PATCH", location, data=chunk, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{start}-{end}",
        "Content-Length": str(len(chunk)),
    })
    expect(resp, 202, f"PATCH chunk {start}-{end}: ")
    assert resp.headers.get("Range") == f"0-{end}", describe(resp)
    assert resp.headers.get("Location"), describe(resp)
    return absolute(base_url, resp.headers["Location"])


def finish_upload(base_url: str, location: str, digest: str, repo: str, **kwargs) -> requests.Response:
    resp = expect(fresh("PUT", with_digest(location, digest), **kwargs), 201, "close upload: ")
    assert resp.headers.get("Location"), describe(resp)
    assert urlsplit(absolute(base_url, resp.headers["Location"])).path == f"/v2/{repo}/blobs/{digest}", describe(resp)
    return resp


def push_blob(base_url: str, repo: str, data: bytes) -> str:
    """POST + PUT monolithic upload; returns the digest."""
    digest = digest_of(data)
    location = start_upload(base_url, repo)
    finish_upload(base_url, location, digest, repo, data=data,
                  headers={"Content-Type": "application/octet-stream"})
    return digest


def push_manifest(base_url: str, repo: str, reference: str, body: bytes,
                  media_type: str = MANIFEST_V1) -> requests.Response:
    resp = fresh("PUT", f"{base_url}/v2/{repo}/manifests/{reference}", data=body,
                 headers={"Content-Type": media_type})
    return expect(resp, 201, f"PUT manifest {repo}:{reference}: ")


def blob_sha256_streamed(url: str) -> tuple[str, int, requests.Response]:
    """GET a blob streaming; return (digest, size, response)."""
    hasher, size = hashlib.sha256(), 0
    with requests.get(url, stream=True, timeout=TIMEOUT, headers={"Connection": "close"}) as resp:
        if resp.status_code == 200:
            for piece in resp.iter_content(1 << 16):
                hasher.update(piece)
                size += len(piece)
    return "sha256:" + hasher.hexdigest(), size, resp


# -- OCI image layout (for skopeo) -------------------------------------------

def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1704067200, 0o755
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


class OciLayout:
    """Writes an OCI image layout: oci-layout, index.json, blobs/sha256/."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.index_entries: list[dict] = []
        self._write_index()

    def add_blob(self, data: bytes, media_type: str) -> dict:
        digest = digest_of(data)
        (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_image(self, arch: str = "amd64", os_name: str = "linux",
                  layers: list[dict[str, bytes]] | None = None,
                  labels: dict[str, str] | None = None) -> dict:
        """Add config, gzip'd tar layers and a manifest. Returns a dict with
        ``descriptor``, ``manifest`` (bytes), ``config`` (bytes), ``layers``
        (descriptors) and ``diff_ids``."""
        layers = layers or [{"hello.txt": f"hello from {arch}\n".encode()}]
        layer_descs, diff_ids = [], []
        for files in layers:
            tar = make_tar(files)
            diff_ids.append(digest_of(tar))
            layer_descs.append(self.add_blob(gzip_bytes(tar), LAYER_TGZ))
        config = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": os_name,
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/hello"],
                       "Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"e2e layer {i}"}
                        for i in range(len(layers))],
        }
        config_bytes = canonical_json(config)
        config_desc = self.add_blob(config_bytes, CONFIG_V1)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V1, "config": config_desc,
                    "layers": layer_descs,
                    "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
        manifest_bytes = json.dumps(manifest, indent=2).encode()
        desc = self.add_blob(manifest_bytes, MANIFEST_V1)
        return {"descriptor": desc, "manifest": manifest_bytes, "config": config_bytes,
                "config_descriptor": config_desc, "layers": layer_descs, "diff_ids": diff_ids}

    def add_index(self, images: list[dict]) -> dict:
        manifests = []
        for image in images:
            config = json.loads(image["config"])
            manifests.append(dict(image["descriptor"], platform={
                "architecture": config["architecture"], "os": config["os"]}))
        index = {"schemaVersion": 2, "mediaType": INDEX_V1, "manifests": manifests}
        index_bytes = json.dumps(index, indent=2).encode()
        return {"descriptor": self.add_blob(index_bytes, INDEX_V1), "index": index_bytes,
                "images": images}

    def tag(self, descriptor: dict, tag: str) -> None:
        self.index_entries.append(dict(descriptor, annotations={REF_NAME: tag}))
        self._write_index()

    def _write_index(self) -> None:
        index = {"schemaVersion": 2, "mediaType": INDEX_V1, "manifests": self.index_entries}
        (self.root / "index.json").write_text(json.dumps(index, indent=2))


def read_layout(root: Path, tag: str) -> dict:
    """Resolve ``tag`` in a layout written by anyone (e.g. skopeo)."""
    root = Path(root)
    index = json.loads((root / "index.json").read_text())
    for entry in index["manifests"]:
        if (entry.get("annotations") or {}).get(REF_NAME) == tag:
            return entry
    raise AssertionError(f"tag {tag!r} not in {root}/index.json: {index}")


def layout_blob(root: Path, digest: str) -> bytes:
    return (Path(root) / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def layout_blob_digests(root: Path) -> set[str]:
    return {"sha256:" + p.name for p in (Path(root) / "blobs" / "sha256").iterdir()}


def reachable_digests(root: Path, descriptor: dict) -> set[str]:
    """Every digest reachable from ``descriptor`` in the layout (incl. itself)."""
    found = {descriptor["digest"]}
    body = json.loads(layout_blob(root, descriptor["digest"]))
    for child in body.get("manifests", []):
        found |= reachable_digests(root, child)
    if "config" in body:
        found.add(body["config"]["digest"])
    for layer in body.get("layers", []):
        found.add(layer["digest"])
    return found
