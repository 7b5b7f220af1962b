"""Protocol helpers for the API tests: push/pull OCI content over a test client.

Works with anything exposing ``get/head/post/put/patch/delete(path,
headers=..., data=...)`` and returning responses with ``status_code``,
``headers`` and ``get_data()`` (the Flask test client). Every helper follows
``Location`` headers exactly as returned, never rebuilding them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCTET = {"Content-Type": "application/octet-stream"}
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# distribution-spec v1.1.1 "Error Codes" (code-1..code-14), plus the two extra
# entries of the conformance suite's errorCodes list (setup.go).
SPEC_ERROR_CODES = frozenset({
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
    "MANIFEST_UNVERIFIED", "TAG_INVALID",
})

# The conformance suite's test layer (setup.go layerBase64String): a tiny tar.gz.
CONFORMANCE_LAYER = base64.b64decode(
    "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0"
    "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD"
    "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA")
# dummyDigest of the suite: sha256 of "hello world", never pushed.
DUMMY_DIGEST = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def go_json(doc) -> bytes:
    """Serialise like Go's json.MarshalIndent(v, "", "\\t") (the suite's manifests)."""
    return json.dumps(doc, indent="\t").encode()


def descriptor(media_type: str, content: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(content), "size": len(content), **extra}


def random_config() -> bytes:
    """A unique image config, like the suite's configs[i] (random author)."""
    return go_json({"author": secrets.token_hex(8), "architecture": "amd64", "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": []}})


def image_manifest(config: dict, layers: list[dict], *, subject: dict | None = None,
                   artifact_type: str | None = None, annotations: dict | None = None,
                   media_type: str | None = OCI_MANIFEST) -> bytes:
    doc: dict = {"schemaVersion": 2}
    if media_type:
        doc["mediaType"] = media_type
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config
    doc["layers"] = layers
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return go_json(doc)


def conformance_manifest(config: bytes, layers: list[bytes] = (CONFORMANCE_LAYER,),
                         *, media_type: str | None = OCI_MANIFEST) -> bytes:
    """The suite's manifests[i]: a config descriptor carrying ``data`` and an
    unknown field (``newUnspecifiedField``), which registries must accept."""
    config_desc = descriptor(OCI_CONFIG, config, data=base64.b64encode(config).decode(),
                             newUnspecifiedField=base64.b64encode(b"hello world").decode())
    return image_manifest(config_desc, [descriptor(OCI_LAYER_GZIP, layer) for layer in layers],
                          media_type=media_type)


def image_index(manifests: list[dict], *, subject: dict | None = None,
                artifact_type: str | None = None, annotations: dict | None = None) -> bytes:
    doc: dict = {"schemaVersion": 2, "mediaType": OCI_INDEX}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["manifests"] = manifests
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return go_json(doc)


# ---------------------------------------------------------------- responses

def body_json(resp):
    return json.loads(resp.get_data())


def assert_error(resp, status: int, code: str | set | frozenset | None = None) -> dict:
    """Assert an OCI error envelope with ``status`` and (one of) ``code``; return it."""
    data = resp.get_data()
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {data[:500]!r}"
    assert resp.mimetype == "application/json", f"Content-Type {resp.headers.get('Content-Type')!r}"
    doc = json.loads(data)
    assert isinstance(doc.get("errors"), list) and doc["errors"], doc
    for entry in doc["errors"]:
        assert isinstance(entry, dict) and isinstance(entry.get("code"), str), doc
        assert re.fullmatch(r"[A-Z_]+", entry["code"]), doc
        assert entry["code"] in SPEC_ERROR_CODES, f"not a spec error code: {entry['code']}"
        assert isinstance(entry.get("message", ""), str), doc
    if code is not None:
        wanted = {code} if isinstance(code, str) else set(code)
        assert wanted & {e["code"] for e in doc["errors"]}, f"expected {wanted}, got {doc}"
    return doc


def location(resp) -> str:
    """The response's Location: present, and a relative path under /v2/."""
    loc = resp.headers.get("Location")
    assert loc, f"no Location header (status {resp.status_code})"
    assert loc.startswith("/v2/"), f"Location is not a relative /v2/ path: {loc!r}"
    return loc


def with_query(url: str, **params) -> str:
    """Append query parameters to an opaque URL, keeping its own query intact."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


def link_next(resp) -> str | None:
    """The target of a ``Link: <...>; rel="next"`` header, if any."""
    header = resp.headers.get("Link")
    if not header:
        return None
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    assert match, f"malformed Link header: {header!r}"
    return match.group(1)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# ---------------------------------------------------------------- blobs

def start_upload(client, name: str, **query):
    resp = client.post(f"/v2/{name}/blobs/uploads/" + (f"?{urlencode(query)}" if query else ""),
                       headers={"Content-Length": "0"})
    return resp


def open_session(client, name: str) -> str:
    resp = start_upload(client, name)
    assert resp.status_code == 202, resp.get_data()
    return location(resp)


def push_blob_monolithic(client, name: str, data: bytes) -> str:
    """Single POST ?digest= upload (end-4b); asserts 201."""
    digest = sha256_digest(data)
    resp = client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data,
                       headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.get_data()
    return digest


def push_blob(client, name: str, data: bytes) -> str:
    """POST then PUT upload (end-4a, end-6), as the suite's setup does; asserts 201."""
    digest = sha256_digest(data)
    loc = open_session(client, name)
    resp = client.put(with_query(loc, digest=digest), data=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.get_data()
    return digest


def push_blob_chunked(client, name: str, chunks: list[bytes], final: bytes = b"") -> str:
    """PATCH each chunk with Content-Range, then PUT (optionally with a final chunk)."""
    data = b"".join(chunks) + final
    digest = sha256_digest(data)
    loc, offset = open_session(client, name), 0
    for chunk in chunks:
        resp = client.patch(loc, data=chunk, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert resp.status_code == 202, resp.get_data()
        offset += len(chunk)
        assert resp.headers.get("Range") == f"0-{offset - 1}"
        loc = location(resp)
    headers = {"Content-Type": "application/octet-stream"}
    if final:
        headers["Content-Range"] = f"{offset}-{offset + len(final) - 1}"
    resp = client.put(with_query(loc, digest=digest), data=final, headers=headers)
    assert resp.status_code == 201, resp.get_data()
    return digest


def blob_status(client, name: str, digest: str) -> int:
    return client.head(f"/v2/{name}/blobs/{digest}").status_code


def blob_body(client, name: str, digest: str) -> bytes | None:
    resp = client.get(f"/v2/{name}/blobs/{digest}")
    return resp.get_data() if resp.status_code == 200 else None


def push_config_and_layer(client, name: str) -> bytes:
    """A fresh config (the suite's configs[i]) and the suite's layer, pushed; returns the config."""
    config = random_config()
    push_blob(client, name, config)
    push_blob(client, name, CONFORMANCE_LAYER)
    return config


# ---------------------------------------------------------------- manifests

def push_manifest(client, name: str, ref: str, manifest, media_type: str = OCI_MANIFEST):
    """PUT a manifest (dict, or exact bytes); return the response unasserted."""
    body = manifest if isinstance(manifest, bytes) else go_json(manifest)
    return client.put(f"/v2/{name}/manifests/{ref}", data=body, headers={"Content-Type": media_type})


def put_manifest_ok(client, name: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST) -> str:
    resp = push_manifest(client, name, ref, body, media_type)
    assert resp.status_code == 201, resp.get_data()
    return sha256_digest(body)


def make_image(client, name: str, layers=(b"layer-0",), tag: str | None = "latest",
               config: bytes | None = None, **manifest_kw) -> dict:
    """Push config + layers + manifest; return digests and the exact manifest bytes."""
    config = random_config() if config is None else config
    config_digest = push_blob(client, name, config)
    layer_digests = [push_blob(client, name, layer) for layer in layers]
    body = image_manifest(descriptor(OCI_CONFIG, config),
                          [descriptor(OCI_LAYER_GZIP, layer) for layer in layers], **manifest_kw)
    digest = put_manifest_ok(client, name, tag or sha256_digest(body), body)
    return {"config": config_digest, "layers": layer_digests, "manifest": digest,
            "body": body, "size": len(body), "tag": tag}


def tag_list(client, name: str, **query) -> list[str]:
    resp = client.get(f"/v2/{name}/tags/list" + (f"?{urlencode(query)}" if query else ""))
    assert resp.status_code == 200, resp.get_data()
    return body_json(resp).get("tags") or []


def referrers(client, name: str, digest: str, **query) -> list[dict]:
    resp = client.get(f"/v2/{name}/referrers/{digest}" + (f"?{urlencode(query)}" if query else ""))
    assert resp.status_code == 200, resp.get_data()
    return body_json(resp)["manifests"]
