"""Pull workflow at the protocol level.

Mirrors conformance/01_pull_test.go of distribution-spec v1.1.1 (commit a139cc4;
read from the stored copy 47008ca, the configs[]/manifests[] generation):

Setup
  - "Populate registry with test blob" (configs[0] and configs[1], POST then PUT)
  - "Populate registry with test layer"
  - "Populate registry with test manifest" (manifests[0] by tag, manifests[1] by digest)
  - "Get tag name from environment" (environment-driven; not applicable here)
Pull blobs
  - "HEAD request to nonexistent blob should result in 404 response"
  - "HEAD request to existing blob should yield 200"
  - "GET nonexistent blob should result in 404 response"
  - "GET request to existing blob URL should yield 200"
Pull manifests
  - "HEAD request to nonexistent manifest should return 404"
  - "HEAD request to manifest[0] path (digest) should yield 200 response"
  - "HEAD request to manifest[1] path (digest) should yield 200 response"
  - "HEAD request to manifest path (tag) should yield 200 response"
  - "GET nonexistent manifest should return 404"
  - "GET request to manifest[0] path (digest) should yield 200 response"
  - "GET request to manifest[1] path (digest) should yield 200 response"
  - "GET request to manifest path (tag) should yield 200 response"
Error codes
  - "400 response body should contain OCI-conforming JSON message"
Teardown
  - "Delete manifest[0]/[1] created in setup", "Delete config[0]/[1] blob created in
    setup", "Delete layer blob created in setup"

Beyond the suite (the registry's contract): GET /v2/, exact bytes and stored
Content-Type, Docker-Content-Digest and Content-Length on every success, HEAD
without a body, and blob Range requests (206 / 416).
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.support.oci_client import (
    CONFORMANCE_LAYER, DUMMY_DIGEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, assert_error,
    conformance_manifest, descriptor, go_json, image_index, make_image, push_blob, put_manifest_ok,
    random_config, sha256_digest,
)

NAME = "conformance/pull-test"
TAG = "tagtest0"
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"  # the suite's nonexistentManifest
MISSING_REFS = [NONEXISTENT_MANIFEST, "no-such-tag", DUMMY_DIGEST]


@pytest.fixture
def pulled(client):
    """The suite's pull Setup: two configs, the layer, manifests[0] by tag, [1] by digest."""
    configs = [random_config(), random_config()]
    config_digests = [push_blob(client, NAME, c) for c in configs]
    layer_digest = push_blob(client, NAME, CONFORMANCE_LAYER)
    manifests = [conformance_manifest(c) for c in configs]
    digests = [put_manifest_ok(client, NAME, TAG, manifests[0]),
               put_manifest_ok(client, NAME, sha256_digest(manifests[1]), manifests[1])]
    return SimpleNamespace(configs=configs, config_digests=config_digests, layer=layer_digest,
                           manifests=manifests, digests=digests)


def assert_blob_headers(resp, data: bytes):
    assert resp.headers.get("Docker-Content-Digest") == sha256_digest(data)
    assert int(resp.headers["Content-Length"]) == len(data)


def assert_manifest_headers(resp, body: bytes, media_type: str = OCI_MANIFEST):
    assert resp.headers.get("Docker-Content-Digest") == sha256_digest(body)
    assert resp.mimetype == media_type
    assert int(resp.headers["Content-Length"]) == len(body)


# ------------------------------------------------------------------ base

def test_base_endpoint_returns_200_with_api_version_header(client):
    resp = client.get("/v2/")
    assert resp.status_code == 200
    assert resp.headers.get("Docker-Distribution-API-Version") == "registry/2.0"


def test_setup_populates_configs_layer_and_both_manifests(client, pulled):
    for digest in pulled.config_digests + [pulled.layer]:
        assert client.head(f"/v2/{NAME}/blobs/{digest}").status_code == 200
    assert client.head(f"/v2/{NAME}/manifests/{TAG}").status_code == 200
    assert client.head(f"/v2/{NAME}/manifests/{pulled.digests[1]}").status_code == 200


# ------------------------------------------------------------------ blobs

def test_head_nonexistent_blob_is_404_without_body(client, pulled):
    resp = client.head(f"/v2/{NAME}/blobs/{DUMMY_DIGEST}")
    assert resp.status_code == 404
    assert resp.get_data() == b""


@pytest.mark.parametrize("which", ["config0", "config1", "layer"])
def test_head_existing_blob_is_200_with_digest_length_and_no_body(client, pulled, which):
    data = {"config0": pulled.configs[0], "config1": pulled.configs[1], "layer": CONFORMANCE_LAYER}[which]
    resp = client.head(f"/v2/{NAME}/blobs/{sha256_digest(data)}")
    assert resp.status_code == 200
    assert_blob_headers(resp, data)
    assert resp.get_data() == b""


def test_get_nonexistent_blob_is_404_blob_unknown(client, pulled):
    assert_error(client.get(f"/v2/{NAME}/blobs/{DUMMY_DIGEST}"), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("which", ["config0", "layer"])
def test_get_existing_blob_returns_exact_bytes_and_digest(client, pulled, which):
    data = pulled.configs[0] if which == "config0" else CONFORMANCE_LAYER
    resp = client.get(f"/v2/{NAME}/blobs/{sha256_digest(data)}")
    assert resp.status_code == 200
    assert resp.get_data() == data
    assert_blob_headers(resp, data)


def test_get_blob_of_unknown_repository_is_404(client, pulled):
    resp = client.get(f"/v2/no/such-repo/blobs/{pulled.config_digests[0]}")
    assert_error(resp, 404, {"BLOB_UNKNOWN", "NAME_UNKNOWN"})


# ------------------------------------------------------------------ blob ranges

RANGE_CASES = [
    ("bytes=0-3", slice(0, 4)),
    ("bytes=5-", slice(5, None)),
    ("bytes=-3", slice(-3, None)),
    ("bytes=2-2", slice(2, 3)),
    ("bytes=10-9999", slice(10, None)),  # end past the blob: clamped (RFC 9110 14.1.2)
]


@pytest.mark.parametrize("header,part", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_blob_range_request_returns_206_with_content_range(client, header, part):
    data = bytes(range(64))
    digest = push_blob(client, NAME, data)
    resp = client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": header})
    assert resp.status_code == 206
    expected = data[part]
    assert resp.get_data() == expected
    start = part.start % len(data)
    assert resp.headers.get("Content-Range") == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"
    assert int(resp.headers["Content-Length"]) == len(expected)


@pytest.mark.parametrize("header", ["bytes=64-", "bytes=100-200"])
def test_blob_unsatisfiable_range_is_416(client, header):
    data = bytes(range(64))
    digest = push_blob(client, NAME, data)
    resp = client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": header})
    assert resp.status_code == 416
    if "Content-Range" in resp.headers:  # RFC 9110 15.5.17: SHOULD send "bytes */<size>"
        assert resp.headers["Content-Range"] == f"bytes */{len(data)}"


def test_blob_get_without_range_is_full_200(client):
    data = b"x" * 1000
    digest = push_blob(client, NAME, data)
    resp = client.get(f"/v2/{NAME}/blobs/{digest}")
    assert resp.status_code == 200 and resp.get_data() == data


# ------------------------------------------------------------------ manifests

@pytest.mark.parametrize("ref", MISSING_REFS)
def test_head_nonexistent_manifest_is_404(client, pulled, ref):
    resp = client.head(f"/v2/{NAME}/manifests/{ref}")
    assert resp.status_code == 404
    assert resp.get_data() == b""


@pytest.mark.parametrize("i", [0, 1])
def test_head_manifest_by_digest_is_200_with_headers_and_no_body(client, pulled, i):
    resp = client.head(f"/v2/{NAME}/manifests/{pulled.digests[i]}", headers={"Accept": OCI_MANIFEST})
    assert resp.status_code == 200
    assert_manifest_headers(resp, pulled.manifests[i])
    assert resp.get_data() == b""


def test_head_manifest_by_tag_is_200_with_digest_of_tagged_manifest(client, pulled):
    resp = client.head(f"/v2/{NAME}/manifests/{TAG}", headers={"Accept": OCI_MANIFEST})
    assert resp.status_code == 200
    assert_manifest_headers(resp, pulled.manifests[0])


@pytest.mark.parametrize("ref", MISSING_REFS)
def test_get_nonexistent_manifest_is_404_manifest_unknown(client, pulled, ref):
    assert_error(client.get(f"/v2/{NAME}/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("i", [0, 1])
def test_get_manifest_by_digest_returns_exact_bytes(client, pulled, i):
    resp = client.get(f"/v2/{NAME}/manifests/{pulled.digests[i]}", headers={"Accept": OCI_MANIFEST})
    assert resp.status_code == 200
    assert resp.get_data() == pulled.manifests[i]
    assert_manifest_headers(resp, pulled.manifests[i])


def test_get_manifest_by_tag_returns_exact_bytes(client, pulled):
    resp = client.get(f"/v2/{NAME}/manifests/{TAG}", headers={"Accept": OCI_MANIFEST})
    assert resp.status_code == 200
    assert resp.get_data() == pulled.manifests[0]
    assert_manifest_headers(resp, pulled.manifests[0])


def test_manifests_and_tags_are_per_repository(client, pulled):
    make_image(client, "conformance/neighbour", tag="other")
    for ref in (TAG, pulled.digests[0], pulled.digests[1]):
        resp = client.get(f"/v2/conformance/neighbour/manifests/{ref}")
        assert_error(resp, 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/conformance/neighbour/blobs/{pulled.layer}").status_code == 404


def test_get_manifest_of_unknown_repository_is_404(client):
    resp = client.get(f"/v2/no/such-repo/manifests/{TAG}")
    assert_error(resp, 404, {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"})


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_manifest_is_served_with_the_content_type_it_was_pushed_with(client):
    config = random_config()
    push_blob(client, NAME, config)
    push_blob(client, NAME, CONFORMANCE_LAYER)
    docker = go_json({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", config),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", CONFORMANCE_LAYER)]})
    no_media_type = conformance_manifest(config, media_type=None)
    oci = conformance_manifest(config)
    index = image_index([descriptor(OCI_MANIFEST, oci)])
    for tag, body, media_type in [("docker", docker, DOCKER_MANIFEST), ("bare", no_media_type, OCI_MANIFEST),
                                  ("oci", oci, OCI_MANIFEST), ("index", index, OCI_INDEX)]:
        put_manifest_ok(client, NAME, tag, body, media_type)
    for tag, body, media_type in [("docker", docker, DOCKER_MANIFEST), ("bare", no_media_type, OCI_MANIFEST),
                                  ("oci", oci, OCI_MANIFEST), ("index", index, OCI_INDEX)]:
        for ref in (tag, sha256_digest(body)):
            resp = client.get(f"/v2/{NAME}/manifests/{ref}",
                              headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}"})
            assert resp.status_code == 200, (tag, resp.get_data())
            assert resp.get_data() == body
            assert_manifest_headers(resp, body, media_type)


def test_manifest_bytes_are_not_reserialised(client):
    """Odd whitespace, key order and unicode must come back byte for byte."""
    config = random_config()
    push_blob(client, NAME, config)
    doc = {"layers": [], "config": descriptor(OCI_CONFIG, config), "schemaVersion": 2,
           "annotations": {"note": "caf\u00e9 \u2603"}, "mediaType": OCI_MANIFEST}
    body = b"\n  " + json.dumps(doc, ensure_ascii=False, indent=3).encode() + b"\n\n"
    digest = put_manifest_ok(client, NAME, "raw", body)
    assert client.get(f"/v2/{NAME}/manifests/raw").get_data() == body
    assert client.get(f"/v2/{NAME}/manifests/{digest}").get_data() == body


# ------------------------------------------------------------------ error codes

def test_400_response_body_is_oci_conforming_json(client, pulled):
    """The suite's 'Error codes' spec: 400 or 404; a 400 carries a spec error code."""
    resp = client.get(f"/v2/{NAME}/manifests/sha256:totallywrong", data=b"blablabla",
                      headers={"Content-Type": OCI_MANIFEST})
    assert resp.status_code in (400, 404)
    if resp.status_code == 400:
        assert_error(resp, 400)


def test_put_manifest_with_malformed_digest_reference_is_400_with_envelope(client, pulled):
    """The older suite (pre-v1.1) sent this as a PUT; the contract wants DIGEST_INVALID."""
    resp = client.put(f"/v2/{NAME}/manifests/sha256:totallywrong", data=b"blablabla",
                      headers={"Content-Type": OCI_MANIFEST})
    assert_error(resp, 400, {"DIGEST_INVALID", "MANIFEST_INVALID"})


# ------------------------------------------------------------------ teardown

def test_teardown_deletes_manifests_then_blobs_with_202(client, pulled):
    for digest in pulled.digests:
        assert client.delete(f"/v2/{NAME}/manifests/{digest}").status_code == 202
    for digest in pulled.config_digests + [pulled.layer]:
        assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    for digest in pulled.digests:
        assert client.get(f"/v2/{NAME}/manifests/{digest}").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/{TAG}").status_code == 404
    for digest in pulled.config_digests + [pulled.layer]:
        assert client.head(f"/v2/{NAME}/blobs/{digest}").status_code == 404
