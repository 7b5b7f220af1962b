"""Path traversal through every endpoint kind (Flask client): nothing outside the storage root is read or made.

The storage root sits in a temp folder next to a canary file and to decoys:
a copy of a real repository folder and of a real upload session, placed
where a `..` in a name, tag, digest, upload id or ``from=`` would land.
Every attempt (GET/HEAD/PUT/PATCH/POST/DELETE, each hostile spelling in
each position) must get a 4xx in the OCI envelope, so none of the decoys
answered; the canary is untouched, nothing appeared or changed outside the
root, and nothing was half-written inside it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.flask_client import BufferedClient
from tests.support.oci_client import SPEC_ERROR_CODES, make_image, open_session, sha256_digest

REPO = "ok/app"
# Each is tried in every position; `{up}` climbs towards the temp folder.
SPELLINGS = [
    "..", "../", "{up}outside", "{up}outside-upload", "{up}canary.txt", "{up}data/uploads", "..%2F..%2Foutside",
    "..%2f..%2f..%2fcanary.txt",
    "%2e%2e/%2e%2e/outside", "%2e%2e%2f%2e%2e%2foutside", "%252e%252e%252foutside", ".%2e/.%2e/outside",
    "..\\..\\outside", "..%5c..%5coutside", "%00", "a%00b", "outside%00.json", "/etc/passwd", "%2Fetc%2Fpasswd",
    "//outside", "a/" * 130 + "b", "a" * 300, "\uff0e\uff0e/\uff0e\uff0e/outside", "\u2025/outside",
    "%c0%ae%c0%ae/outside", "..\u2215outside", "..\uff0foutside", "..;/outside", "....//....//outside",
    "sha256:../../outside", "sha256:" + "%2e" * 64, "~/outside", "%7e/outside", "ok/app/../../outside",
]


def hostile() -> list[str]:
    """Every spelling; `{up}` from 1 to 5 levels (a name sits 2 below the temp folder, a tag 5, an upload id 2)."""
    return list(dict.fromkeys(s.replace("{up}", "../" * up) for s in SPELLINGS for up in range(1, 6)))


@pytest.fixture
def site(tmp_path, redis_server):
    """(client, temp folder, storage root, the real image, an open upload session's URL)."""
    root = tmp_path / "data"
    app = create_app(load_settings(data={"storage": {"root": str(root)},
                                         "redis": {"url": redis_server, "key_prefix": f"trav{tmp_path.name}"}},
                                   environ={}))
    app.test_client_class = BufferedClient
    client = app.test_client()
    image = make_image(client, REPO, layers=[b"layer"], tag="latest")
    make_image(client, "private/src", layers=[b"private layer"], tag="v1")
    session = open_session(client, REPO)
    (tmp_path / "canary.txt").write_bytes(b"do not touch\n")
    shutil.copytree(root / "repos" / "private" / "src", tmp_path / "outside")  # a decoy repository
    upload_id = session.rsplit("/", 1)[1].split("?")[0]
    shutil.copytree(root / "uploads" / upload_id, tmp_path / "outside-upload")  # a decoy session
    return client, tmp_path, root, image, session


def attempts(image: dict, session: str) -> list[tuple[str, str, dict]]:
    """(method, URL, request keywords) for every hostile spelling in every position."""
    digest, manifest = image["layers"][0], image["manifest"]
    private = sha256_digest(b"private layer")
    out = []
    for x in hostile():  # names
        out += [("GET", f"/v2/{x}/manifests/latest", {}), ("HEAD", f"/v2/{x}/manifests/{manifest}", {}),
                ("PUT", f"/v2/{x}/manifests/latest", {"data": image["body"], "headers": _manifest_type()}),
                ("DELETE", f"/v2/{x}/manifests/latest", {}), ("GET", f"/v2/{x}/blobs/{digest}", {}),
                ("HEAD", f"/v2/{x}/blobs/{digest}", {}), ("DELETE", f"/v2/{x}/blobs/{digest}", {}),
                ("POST", f"/v2/{x}/blobs/uploads/", {}),
                ("POST", f"/v2/{x}/blobs/uploads/?mount={digest}&from={REPO}", {}),
                ("GET", f"/v2/{x}/tags/list", {}), ("GET", f"/v2/{x}/_regext/tags", {}),
                ("GET", f"/v2/{x}/_oci/tag-history/latest", {}), ("GET", f"/v2/{x}/referrers/{manifest}", {})]
    for x in hostile():  # tags, digests, upload ids, mount sources
        out += [("GET", f"/v2/{REPO}/manifests/{x}", {}), ("HEAD", f"/v2/{REPO}/manifests/{x}", {}),
                ("PUT", f"/v2/{REPO}/manifests/{x}", {"data": image["body"], "headers": _manifest_type()}),
                ("DELETE", f"/v2/{REPO}/manifests/{x}", {}), ("GET", f"/v2/{REPO}/_oci/tag-history/{x}", {}),
                ("GET", f"/v2/{REPO}/_regext/tags/{x}/newer", {}),
                ("GET", f"/v2/{REPO}/blobs/{x}", {}), ("HEAD", f"/v2/{REPO}/blobs/{x}", {}),
                ("DELETE", f"/v2/{REPO}/blobs/{x}", {}), ("GET", f"/v2/{REPO}/_regext/digests/{x}/tags", {}),
                ("GET", f"/v2/{REPO}/blobs/uploads/{x}", {}), ("DELETE", f"/v2/{REPO}/blobs/uploads/{x}", {}),
                ("PATCH", f"/v2/{REPO}/blobs/uploads/{x}", {"data": b"abc"}),
                ("PUT", f"/v2/{REPO}/blobs/uploads/{x}?digest={sha256_digest(b'abc')}", {"data": b"abc"}),
                ("PUT", f"{session}{'&' if '?' in session else '?'}digest={x}", {}),
                ("POST", f"/v2/{REPO}/blobs/uploads/?digest={x}", {"data": b"abc"}),
                ("POST", f"/v2/{REPO}/blobs/uploads/?mount={x}&from={REPO}", {}),
                ("POST", f"/v2/other/blobs/uploads/?mount={private}&from={x}", {})]
    return out


def _manifest_type() -> dict:
    return {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with a hash of its bytes ('dir' for folders)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def check_refused(resp, where: str) -> None:
    data = resp.get_data()
    assert 400 <= resp.status_code < 500, f"{where} -> {resp.status_code}: {data[:300]!r}"
    if where.startswith("HEAD"):
        return
    assert resp.mimetype == "application/json", (where, resp.status_code, data[:200])
    errors = json.loads(data)["errors"]
    assert errors and all(e["code"] in SPEC_ERROR_CODES for e in errors), (where, errors)


def test_traversal_attempts_are_refused_and_touch_nothing(site):
    client, base, root, image, session = site
    before_outside = {k: v for k, v in snapshot(base).items() if not k.startswith("data")}
    before_root = snapshot(root)
    tried = attempts(image, session)
    for method, url, kwargs in tried:
        check_refused(client.open(url, method=method, **kwargs), f"{method} {url[:160]}")
    assert (base / "canary.txt").read_bytes() == b"do not touch\n"
    after_outside = {k: v for k, v in snapshot(base).items() if not k.startswith("data")}
    assert after_outside == before_outside, set(after_outside) ^ set(before_outside)
    assert snapshot(root) == before_root, "a refused request changed the storage"
    assert len(tried) > 1500, len(tried)


def test_the_decoys_would_answer_if_reached(site):
    """The decoys are real: the same requests aimed at the real places succeed."""
    client, _base, _root, image, session = site
    assert client.get("/v2/private/src/manifests/v1").status_code == 200
    assert client.get(f"/v2/{REPO}/blobs/{image['layers'][0]}").status_code == 200
    assert client.get(session).status_code == 204
    resp = client.post(f"/v2/other/blobs/uploads/?mount={sha256_digest(b'private layer')}&from=private/src")
    assert resp.status_code == 201
