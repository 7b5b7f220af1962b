"""A small repository that exercises every listing code path, shared by the fuzz modules, and the
property every answer from it must have (``check_response``).

Built once per module on a real redis-server (the session fixture of
tests/conftest.py) with the Flask test client: version, non-version and
signature tags (one orphaned), a multi-platform index, a referrer, an
untagged manifest, a moved and a deleted tag (tag history), and a fake
remote for mirror-diff. ``Repo.cursors`` holds real continuation tokens.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from pathlib import Path
from xml.etree import ElementTree

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.ext_helpers import push_tags
from tests.support.flask_client import BufferedClient
from tests.support.fake_remote import FakeRemote
from tests.support.oci_client import (OCI_INDEX, OCI_MANIFEST, SPEC_ERROR_CODES, body_json, image_index, make_image,
                                      put_manifest_ok)

NAME = "fuzz/app"
OTHER = "fuzz/other"
TAGS = ["1.0.0", "1.2.0", "1.10.0-rc.1", "2.0.0-alpine", "v3", "20240101", "latest", "edge", "_under"]


@dataclasses.dataclass
class Repo:
    client: BufferedClient
    app: object
    root: Path
    digests: dict[str, str]
    referrer: str
    untagged: str
    cursors: list[str]


def settings_for(root: Path, redis_url: str, remote_url: str):
    return load_settings(data={
        "storage": {"root": str(root)},
        "redis": {"url": redis_url, "key_prefix": f"fuzz{uuid.uuid4().hex[:8]}"},
        "mirror": {"remotes": {"upstream": {"url": remote_url, "timeout": 5}}, "cache_seconds": 60},
        "feed": {"wait_max_seconds": 0},  # a fuzzed `wait` must not hold the run
    }, environ={})


def fake_upstream() -> FakeRemote:
    """A remote that has NAME with two tags and nothing else."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()

    def handler(method, path, _headers):
        if path.startswith(f"/v2/{NAME}/tags/list"):
            return 200, {}, {"name": NAME, "tags": ["1.0.0", "9.9.9"]}
        if path.startswith(f"/v2/{NAME}/manifests/"):
            return 200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}, manifest
        return 404, {}, {"errors": [{"code": "NAME_UNKNOWN", "message": "unknown"}]}

    return FakeRemote(handler)


def build(root: Path, redis_url: str, remote_url: str) -> Repo:
    app = create_app(settings_for(root, redis_url, remote_url))
    app.test_client_class = BufferedClient
    client = app.test_client()
    digests = push_tags(client, NAME, TAGS)
    subject = digests["1.0.0"]
    size = len(client.get(f"/v2/{NAME}/manifests/{subject}").get_data())
    sig = make_image(client, NAME, layers=[b"sig"], tag=f"sha256-{subject[7:]}.sig")
    make_image(client, NAME, layers=[b"orphan"], tag="sha256-" + "e" * 64 + ".sig")
    referrer = make_image(client, NAME, layers=[b"ref"], tag=None, artifact_type="application/vnd.example.sbom",
                          subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": size})
    untagged = make_image(client, NAME, layers=[b"untagged"], tag=None)
    children = [{"mediaType": OCI_MANIFEST, "digest": d, "size": len(client.get(f"/v2/{NAME}/manifests/{d}")
                                                                     .get_data()),
                 "platform": {"os": "linux", "architecture": arch}}
                for d, arch in ((digests["1.2.0"], "amd64"), (sig["manifest"], "arm64"))]
    put_manifest_ok(client, NAME, "multi", image_index(children), OCI_INDEX)
    put_manifest_ok(client, NAME, "latest", client.get(f"/v2/{NAME}/manifests/edge").get_data())  # moved
    assert client.delete(f"/v2/{NAME}/manifests/_under").status_code == 202  # deleted: history only
    make_image(client, OTHER, layers=[b"other"], tag="1.0.0")
    return Repo(client, app, root, digests, referrer["manifest"], untagged["manifest"], cursors(client))


def cursors(client) -> list[str]:
    """Continuation tokens the listings themselves hand out (first page of 2)."""
    out = []
    for url in (f"/v2/{NAME}/_regext/tags?n=2&sort=semver", f"/v2/{NAME}/_regext/tags?n=2&sort=created&order=desc",
                f"/v2/{NAME}/_regext/manifests?n=2", f"/v2/{NAME}/_oci/tag-history/latest?n=1"):
        resp = client.get(url)
        assert resp.status_code == 200, resp.get_data()
        link = resp.headers.get("Link", "")
        if "cursor=" in link:
            out.append(link.split("cursor=", 1)[1].split("&", 1)[0].split(">", 1)[0])
    assert len(out) >= 3, out
    assert body_json(client.get(f"/v2/{NAME}/_regext/orphans"))["orphans"]
    return out


def check_response(resp, where: str, head: bool = False, ok=(200, 304)) -> None:
    """``ok`` (200/304), or a 4xx with a well-formed OCI envelope (HEAD: no body); never a 5xx or a traceback."""
    data = resp.get_data()
    assert resp.status_code < 500, f"{where} -> {resp.status_code}: {data[:800]!r}"
    assert b"Traceback" not in data, where
    if head:
        assert not data and (resp.status_code in ok or 400 <= resp.status_code < 500), where
        return
    if resp.status_code in ok:
        if resp.status_code == 200 and resp.mimetype in ("application/json", OCI_INDEX):
            json.loads(data)
        if resp.status_code == 200 and resp.mimetype == "application/atom+xml":
            ElementTree.fromstring(data)
        return
    assert 400 <= resp.status_code < 500 and resp.mimetype == "application/json", f"{where}: {resp.status_code}"
    errors = json.loads(data)["errors"]
    assert isinstance(errors, list) and errors, where
    for entry in errors:
        assert entry["code"] in SPEC_ERROR_CODES and isinstance(entry["message"], str), (where, entry)
        assert set(entry) <= {"code", "message", "detail"}, (where, entry)
