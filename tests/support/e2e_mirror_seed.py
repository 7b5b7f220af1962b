"""Seed two registries over HTTP with one known difference of every kind (for mirror-diff).

``seed_pair(a_url, b_url, untagged=True)`` pushes repository ``app`` to both
(and ``extra`` to A only) and returns ``expected(b_untagged)``: the exact
``repositories`` list the JSON report must hold (without methods/requests).
"""
from __future__ import annotations

import gzip
import hashlib
import json

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
LAYER = gzip.compress(b"\0" * 1024, mtime=0)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image(label: str, docker: bool = False) -> tuple[bytes, str]:
    doc = {"schemaVersion": 2,
           "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
           "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": digest(CONFIG),
                      "size": len(CONFIG)},
           "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": digest(LAYER),
                       "size": len(LAYER)}]}
    if not docker:
        doc["annotations"] = {"test.label": label}
    return json.dumps(doc).encode(), doc["mediaType"]


def referrer(subject: bytes) -> tuple[bytes, str]:
    """An untagged artifact manifest about ``subject`` (a referrer)."""
    data, media_type = image("referrer")
    doc = json.loads(data)
    doc["artifactType"] = "application/vnd.example.sbom"
    doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": digest(subject), "size": len(subject)}
    return json.dumps(doc).encode(), media_type


def index(children: list[bytes]) -> tuple[bytes, str]:
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(c), "size": len(c),
                          "platform": {"architecture": "amd64", "os": "linux"}} for c in children]}
    return json.dumps(doc).encode(), OCI_INDEX


class Pusher:
    def __init__(self, url: str):
        self.url = url
        self.sess = requests.Session()
        self.sess.trust_env = False

    def blob(self, repo: str, data: bytes) -> None:
        resp = self.sess.post(f"{self.url}/v2/{repo}/blobs/uploads/", timeout=30)
        assert resp.status_code == 202, resp.text
        location = resp.headers["Location"]
        location = location if "://" in location else self.url + location
        sep = "&" if "?" in location else "?"
        resp = self.sess.put(f"{location}{sep}digest={digest(data)}", data=data, timeout=30,
                             headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 201, resp.text

    def manifest(self, repo: str, ref: str | None, body: tuple[bytes, str]) -> str:
        data, media_type = body
        resp = self.sess.put(f"{self.url}/v2/{repo}/manifests/{ref or digest(data)}", data=data, timeout=30,
                             headers={"Content-Type": media_type})
        assert resp.status_code == 201, (ref, resp.status_code, resp.text)
        return digest(data)


def seed_pair(a_url: str, b_url: str) -> dict:
    """Push the scenario; return the digests by name for building the expectation."""
    a, b = Pusher(a_url), Pusher(b_url)
    for p in (a, b):
        for repo in ("app", "extra") if p is a else ("app",):
            p.blob(repo, CONFIG)
            p.blob(repo, LAYER)
    m = {label: image(label) for label in ("same", "onlya", "onlyb", "moved-a", "moved-b", "conv", "signature",
                                           "untagged-a", "untagged-b", "extra")}
    d = {k: digest(v[0]) for k, v in m.items()}
    docker = image("conv", docker=True)
    multi = index([m["same"][0]])
    ref = referrer(m["same"][0])
    d["docker"], d["multi"], d["referrer"] = digest(docker[0]), digest(multi[0]), digest(ref[0])
    hexes = {k: v.split(":")[1] for k, v in d.items()}
    d["sig_same"], d["sig_onlya"], d["att_moved"] = (f"sha256-{hexes['same']}.sig", f"sha256-{hexes['onlya']}.sig",
                                                     f"sha256-{hexes['moved-a']}.att")
    for p, side in ((a, "a"), (b, "b")):
        p.manifest("app", "same", m["same"])
        p.manifest("app", "moved", m[f"moved-{side}"])
        p.manifest("app", f"only{side}", m[f"only{side}"])
        p.manifest("app", None, m[f"untagged-{side}"])
        p.manifest("app", "multi", multi if side == "a" else m["same"])
        p.manifest("app", "conv", docker if side == "a" else m["conv"])
        p.manifest("app", d["sig_same"], m["signature"])
        p.manifest("app", d["sig_onlya"], m["signature"])
    a.manifest("app", d["att_moved"], m["signature"])
    a.manifest("app", None, ref)
    a.manifest("extra", "latest", m["extra"])
    return d


def expected(d: dict, untagged: bool) -> list[dict]:
    """The exact ``repositories`` of the report (minus methods and requests)."""
    app = {
        "repo_a": "app", "repo_b": "app",
        "only_a": [{"tag": "onlya", "digest": d["onlya"], "media_type": OCI_MANIFEST}],
        "only_b": [{"tag": "onlyb", "digest": d["onlyb"], "media_type": OCI_MANIFEST}],
        "changed": [
            {"tag": "conv", "digest_a": d["docker"], "digest_b": d["conv"], "media_type_a": DOCKER_MANIFEST,
             "media_type_b": OCI_MANIFEST, "note": "docker-vs-oci"},
            {"tag": "moved", "digest_a": d["moved-a"], "digest_b": d["moved-b"], "media_type_a": OCI_MANIFEST,
             "media_type_b": OCI_MANIFEST, "note": None},
            {"tag": "multi", "digest_a": d["multi"], "digest_b": d["same"], "media_type_a": OCI_INDEX,
             "media_type_b": OCI_MANIFEST, "note": "index-vs-platform"},
        ],
        "identical": 1,
        "signatures": sorted([
            {"tag": d["att_moved"], "kind": "att", "subject": d["moved-a"], "status": "only_a",
             "digest_a": d["signature"], "digest_b": None, "orphan_a": False, "orphan_b": False},
            {"tag": d["sig_onlya"], "kind": "sig", "subject": d["onlya"], "status": "identical",
             "digest_a": d["signature"], "digest_b": d["signature"], "orphan_a": False, "orphan_b": True},
        ], key=lambda s: s["tag"]),
        "signatures_identical": 1,
        "untagged_only_a": sorted([{"digest": d["untagged-a"], "subject": None},
                                   {"digest": d["referrer"], "subject": d["same"]}],
                                  key=lambda u: u["digest"]) if untagged else None,
        "untagged_only_b": [{"digest": d["untagged-b"], "subject": None}] if untagged else None,
        "missing": None, "errors": [], "partial": [], "status": "differs",
    }
    extra = {"repo_a": "extra", "repo_b": "extra",
             "only_a": [{"tag": "latest", "digest": d["extra"], "media_type": OCI_MANIFEST}],
             "only_b": [], "changed": [], "identical": 0, "signatures": [], "signatures_identical": 0,
             "untagged_only_a": None, "untagged_only_b": None, "missing": "b", "errors": [], "partial": [],
             "status": "differs"}
    return [app, extra]


def strip(report: dict) -> list[dict]:
    """The report's repositories without the method and request counters."""
    return [{k: v for k, v in r.items() if k not in ("methods", "requests")} for r in report["repositories"]]
