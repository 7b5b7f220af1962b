"""Fill a running registry over HTTP with a slice of the official-images tag history, for the UI tests.

Each ``created``/``moved`` event of an image pushes a manifest for its
target (one manifest per target: a move back to an older target re-uses its
digest), each ``deleted`` event deletes the tag, in the history's order. So
tag pages get real timelines (created, moved from one digest to another,
deleted, re-created) and repository pages real families (``-alpine``...).
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import requests

HISTORY = Path("/work/shared/data/official-images-tag-history.jsonl.gz")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def canonical(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def history_events(image: str, count: int, path: Path = HISTORY) -> list[dict]:
    """The first ``count`` events of ``image`` (fails clearly when the data is missing)."""
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the UI tests replay the official-images history")
    found = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            event = json.loads(line)
            if event["image"] == image:
                found.append(event)
                if len(found) == count:
                    break
    return found


class Seeder:
    """Pushes through the distribution API with one keep-alive session."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if auth:
            self.session.auth = auth

    def blob(self, repo: str, data: bytes) -> dict:
        digest = sha256(data)
        resp = self.session.post(f"{self.url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data, timeout=30)
        assert resp.status_code == 201, resp.text
        return {"digest": digest, "size": len(data)}

    def manifest(self, repo: str, reference: str | None, doc: dict, media_type: str = OCI_MANIFEST) -> dict:
        """Push ``doc`` under the tag ``reference`` (None: by its digest, untagged)."""
        body = canonical(doc)
        resp = self.session.put(f"{self.url}/v2/{repo}/manifests/{reference or sha256(body)}", data=body, timeout=30,
                                headers={"Content-Type": media_type})
        assert resp.status_code == 201, resp.text
        return {"mediaType": media_type, "digest": sha256(body), "size": len(body)}

    def image(self, repo: str, reference: str | None, labels: dict | None = None, annotations: dict | None = None,
              arch: str = "amd64") -> dict:
        config = canonical({"architecture": arch, "os": "linux", "config": {"Labels": labels or {}},
                            "created": "2024-05-01T12:00:00Z",
                            "rootfs": {"type": "layers", "diff_ids": []}})
        cfg = dict(self.blob(repo, config), mediaType="application/vnd.oci.image.config.v1+json")
        layer = dict(self.blob(repo, gzip.compress(arch.encode(), mtime=0)),
                     mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": [layer]}
        if annotations:
            doc["annotations"] = annotations
        return self.manifest(repo, reference, doc)

    def replay(self, repo: str, events: list[dict]) -> None:
        """Replay history events into ``repo``: one manifest per target, deletes as deletes."""
        for event in events:
            if event["event"] == "deleted":
                digest = self.session.head(f"{self.url}/v2/{repo}/manifests/{event['tag']}", timeout=30,
                                           headers={"Accept": OCI_MANIFEST}).headers.get("Docker-Content-Digest")
                if digest:
                    resp = self.session.delete(f"{self.url}/v2/{repo}/manifests/{event['tag']}", timeout=30)
                    assert resp.status_code == 202, resp.text
                continue
            self.image(repo, event["tag"], labels={"org.opencontainers.image.revision": event["target"]},
                       annotations={"org.opencontainers.image.source": event["target"]})

    def multi_platform(self, repo: str, tag: str) -> dict:
        children = [dict(self.image(repo, None, arch=arch),
                         platform={"os": "linux", "architecture": arch}) for arch in ("amd64", "arm64")]
        return self.manifest(repo, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children},
                             OCI_INDEX)

    def signature(self, repo: str, subject: dict, annotations: dict) -> dict:
        empty = dict(self.blob(repo, b"{}"), mediaType="application/vnd.oci.empty.v1+json")
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": [],
               "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
               "subject": subject, "annotations": annotations}
        return self.manifest(repo, None, doc)
