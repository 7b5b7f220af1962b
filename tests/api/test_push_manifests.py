"""Push, manifests: image manifests, artifacts, indexes, subjects and the 4 MiB size, then teardown.

Mirrors conformance/02_push_test.go of distribution-spec v1.1.1 (stored copy 11b8e3f),
plus the specs a later stored copy adds (marked [later]):

Setup
  - [later] "Upload empty JSON blob needed for further tests", "Upload blob needed for further tests"
Manifest Upload
  - "GET nonexistent manifest should return 404"
  - "PUT should accept a manifest upload"
  - "Registry should accept a manifest upload with no layers"
  - "GET request to manifest URL (digest) should yield 200 response"
  - [later] "... with custom config/mediaType (as artifact type)", "... with custom
    artifactType", "... with image index", "... with nested image index", "Dangling subject"
Teardown
  - "Delete manifest created in tests", "Delete config blob created in tests",
    "Delete layer blob created in setup"
"""
from __future__ import annotations

import pytest

from tests.support.oci_client import (
    CONFORMANCE_LAYER, EMPTY_BLOB, EMPTY_DIGEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER_GZIP,
    OCI_MANIFEST, blob_status, conformance_manifest, descriptor, go_json, image_index, image_manifest,
    location, make_image, push_blob, push_config_and_layer, push_manifest, put_manifest_ok,
    random_config, sha256_digest,
)
from tests.support.push_helpers import NAME

ARTIFACT_A = "application/vnd.nhl.peanut.butter.bagel"
REF_BLOB_A = b"NHL Peanut Butter on my NHL bagel"


# ------------------------------------------------------------------ manifests

def test_get_nonexistent_manifest_is_404(client):
    assert client.get(f"/v2/{NAME}/manifests/.INVALID_MANIFEST_NAME").status_code == 404


@pytest.fixture
def pushed_blobs(client):
    """config[1] and the layer, as in the suite's monolithic section."""
    return push_config_and_layer(client, NAME)


def test_put_accepts_manifest_under_four_tags_with_location_and_digest(client, pushed_blobs):
    body = conformance_manifest(pushed_blobs)
    digest = sha256_digest(body)
    for i in range(4):
        resp = push_manifest(client, NAME, f"test{i}", body)
        assert resp.status_code == 201
        assert resp.headers.get("Docker-Content-Digest") == digest
        got = client.get(location(resp), headers={"Accept": OCI_MANIFEST})  # a pullable URL
        assert got.status_code == 200 and got.get_data() == body
    for i in range(4):
        assert client.get(f"/v2/{NAME}/manifests/test{i}").get_data() == body
    # "GET request to manifest URL (digest) should yield 200 response"
    resp = client.get(f"/v2/{NAME}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert resp.status_code == 200 and resp.get_data() == body


def test_manifest_with_no_layers_and_no_media_type_field_is_accepted(client, pushed_blobs):
    body = go_json({"schemaVersion": 2, "config": descriptor(OCI_CONFIG, pushed_blobs), "layers": []})
    resp = push_manifest(client, NAME, "emptylayer", body)
    assert resp.status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/emptylayer").get_data() == body


def test_put_manifest_by_digest_is_201_and_pullable(client, pushed_blobs):
    body = conformance_manifest(pushed_blobs)
    digest = sha256_digest(body)
    resp = push_manifest(client, NAME, digest, body)
    assert resp.status_code == 201
    assert resp.headers.get("Docker-Content-Digest") == digest
    assert client.get(location(resp)).get_data() == body


def test_pushing_the_same_manifest_twice_is_idempotent(client, pushed_blobs):
    body = conformance_manifest(pushed_blobs)
    assert push_manifest(client, NAME, "again", body).status_code == 201
    assert push_manifest(client, NAME, "again", body).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/again").get_data() == body


def test_retagging_moves_the_tag_to_the_new_manifest(client):
    first = make_image(client, NAME, layers=[b"one"], tag="moving")
    second = make_image(client, NAME, layers=[b"two"], tag="moving")
    resp = client.get(f"/v2/{NAME}/manifests/moving")
    assert resp.headers.get("Docker-Content-Digest") == second["manifest"]
    assert client.get(f"/v2/{NAME}/manifests/{first['manifest']}").status_code == 200


def test_empty_config_descriptor_is_accepted_without_the_blob_and_then_served(client):
    layer_digest = push_blob(client, NAME, REF_BLOB_A)
    body = image_manifest(descriptor(OCI_EMPTY, EMPTY_BLOB), [descriptor(ARTIFACT_A, REF_BLOB_A)],
                          artifact_type=ARTIFACT_A)
    assert layer_digest and blob_status(client, NAME, EMPTY_DIGEST) == 404
    assert push_manifest(client, NAME, "artifact", body).status_code == 201
    resp = client.get(f"/v2/{NAME}/blobs/{EMPTY_DIGEST}")
    assert resp.status_code == 200 and resp.get_data() == EMPTY_BLOB


def test_manifest_with_custom_config_media_type_is_accepted(client):
    """[later] 'Registry should accept a manifest upload with custom config/mediaType (as artifact type)'."""
    push_blob(client, NAME, REF_BLOB_A)
    push_blob(client, NAME, CONFORMANCE_LAYER)
    body = image_manifest(descriptor(ARTIFACT_A, REF_BLOB_A), [descriptor(OCI_LAYER_GZIP, CONFORMANCE_LAYER)])
    assert push_manifest(client, NAME, sha256_digest(body), body).status_code == 201


def test_manifest_with_custom_artifact_type_is_accepted(client):
    """[later] 'Registry should accept a manifest upload with custom artifactType'."""
    push_blob(client, NAME, EMPTY_BLOB)
    push_blob(client, NAME, REF_BLOB_A)
    body = image_manifest(descriptor(OCI_EMPTY, EMPTY_BLOB), [descriptor(ARTIFACT_A, REF_BLOB_A)],
                          artifact_type=ARTIFACT_A)
    assert push_manifest(client, NAME, sha256_digest(body), body).status_code == 201


def test_image_index_and_nested_index_are_accepted(client):
    """[later] '... manifest upload with image index' and '... with nested image index'."""
    image = make_image(client, NAME, tag="tagtest0")
    index = image_index([descriptor(OCI_MANIFEST, image["body"])], artifact_type="application/vnd.food.stand",
                        annotations={"org.opencontainers.conformance.test": "test index"})
    resp = push_manifest(client, NAME, sha256_digest(index), index, OCI_INDEX)
    assert resp.status_code == 201
    nested = image_index([descriptor(OCI_INDEX, index)], artifact_type="application/vnd.food.stand")
    resp = push_manifest(client, NAME, sha256_digest(nested), nested, OCI_INDEX)
    assert resp.status_code == 201
    got = client.get(f"/v2/{NAME}/manifests/{sha256_digest(nested)}", headers={"Accept": OCI_INDEX})
    assert got.status_code == 200 and got.get_data() == nested and got.mimetype == OCI_INDEX


def test_dangling_subject_is_accepted_with_oci_subject_header(client):
    """[later] 'Dangling subject': the subject manifest was never pushed."""
    push_blob(client, NAME, EMPTY_BLOB)
    push_blob(client, NAME, REF_BLOB_A)
    absent = conformance_manifest(random_config())
    subject = descriptor(OCI_MANIFEST, absent)
    body = image_manifest(descriptor(OCI_EMPTY, EMPTY_BLOB), [descriptor(ARTIFACT_A, REF_BLOB_A)],
                          artifact_type=ARTIFACT_A, subject=subject)
    resp = push_manifest(client, NAME, sha256_digest(body), body)
    assert resp.status_code == 201
    assert resp.headers.get("OCI-Subject") == subject["digest"]


def test_index_with_subject_gets_oci_subject_header(client):
    image = make_image(client, NAME, tag="subject")
    index = image_index([], subject=descriptor(OCI_MANIFEST, image["body"]))
    resp = push_manifest(client, NAME, "sig-index", index, OCI_INDEX)
    assert resp.status_code == 201
    assert resp.headers.get("OCI-Subject") == image["manifest"]


def test_manifest_without_subject_has_no_oci_subject_header(client):
    image = make_image(client, NAME, tag="plain")
    resp = push_manifest(client, NAME, "plain", image["body"])
    assert resp.status_code == 201 and "OCI-Subject" not in resp.headers


def test_manifest_of_exactly_4_mib_is_accepted(client, pushed_blobs):
    """Spec: 'SHOULD expect to be able to support manifest pushes of at least 4 megabytes'."""
    skeleton = conformance_manifest(pushed_blobs)
    doc_prefix = skeleton[:-2] + b',\n\t"annotations": {"pad": "'
    suffix = b'"}\n}'
    pad = 4 * 1024 * 1024 - len(doc_prefix) - len(suffix)
    body = doc_prefix + b"x" * pad + suffix
    assert len(body) == 4 * 1024 * 1024
    resp = push_manifest(client, NAME, "big", body)
    assert resp.status_code == 201, resp.get_data()[:300]
    assert client.get(f"/v2/{NAME}/manifests/big").get_data() == body


# ------------------------------------------------------------------ teardown

def test_teardown_deletes_manifest_and_blobs_created_in_tests(client, pushed_blobs):
    body = conformance_manifest(pushed_blobs)
    digest = put_manifest_ok(client, NAME, "test0", body)
    assert client.delete(f"/v2/{NAME}/manifests/{digest}").status_code == 202
    for data in (pushed_blobs, CONFORMANCE_LAYER):
        assert client.delete(f"/v2/{NAME}/blobs/{sha256_digest(data)}").status_code == 202
        assert blob_status(client, NAME, sha256_digest(data)) == 404
