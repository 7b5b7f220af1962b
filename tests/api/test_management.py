"""Content management at the protocol level: deleting tags, manifests and blobs.

Mirrors conformance/04_management_test.go of distribution-spec v1.1.1 (stored
copy 3c7a4ac):

Setup
  - "Populate registry with test config blob", "Populate registry with test layer",
    "Populate registry with test tag" (tagtest0 -> manifests[3]),
    "Check how many tags there are before anything gets deleted"
Manifest delete
  - "DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)"
  - "DELETE request to manifest (digest) should yield 202 response unless already deleted"
  - "GET request to deleted manifest URL should yield 404 response, unless delete is disallowed"
  - "GET request to tags list should reflect manifest deletion"
Blob delete
  - "DELETE request to blob URL should yield 202 response"
  - "GET request to deleted blob URL should yield 404 response"

In the suite the workflows share one namespace, so other tags survive the
deletion; the fixture keeps a second tag ("keep") to reproduce that. This
registry enables deletion, so the contract's exact statuses are asserted (202,
then 404), not the suite's "or 400/405" alternatives.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.support.oci_client import (
    CONFORMANCE_LAYER, DUMMY_DIGEST, EMPTY_BLOB, OCI_EMPTY, OCI_MANIFEST, assert_error, blob_status,
    body_json, conformance_manifest, descriptor, image_manifest, make_image, push_blob, push_manifest,
    put_manifest_ok, random_config, referrers, sha256_digest, tag_list,
)

NAME = "conformance/management-test"
TAG = "tagtest0"


@pytest.fixture
def managed(client):
    config = random_config()
    push_blob(client, NAME, config)
    push_blob(client, NAME, CONFORMANCE_LAYER)
    body = conformance_manifest(config)
    digest = put_manifest_ok(client, NAME, TAG, body)
    keep = make_image(client, NAME, layers=[b"kept layer"], tag="keep")
    tags_before = tag_list(client, NAME)
    assert tags_before == sorted([TAG, "keep"])
    return SimpleNamespace(config=config, body=body, digest=digest, keep=keep, tags_before=tags_before)


# ------------------------------------------------------------------ manifest delete (suite order)

def test_delete_tag_returns_202(client, managed):
    resp = client.delete(f"/v2/{NAME}/manifests/{TAG}")
    assert resp.status_code == 202
    assert_error(client.get(f"/v2/{NAME}/manifests/{TAG}"), 404, "MANIFEST_UNKNOWN")


def test_delete_tag_keeps_the_manifest_reachable_by_digest(client, managed):
    assert client.delete(f"/v2/{NAME}/manifests/{TAG}").status_code == 202
    resp = client.get(f"/v2/{NAME}/manifests/{managed.digest}")
    assert resp.status_code == 200 and resp.get_data() == managed.body


def test_delete_manifest_by_digest_after_tag_delete_returns_202(client, managed):
    assert client.delete(f"/v2/{NAME}/manifests/{TAG}").status_code == 202
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202


def test_get_deleted_manifest_is_404_by_digest_and_head(client, managed):
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202
    assert_error(client.get(f"/v2/{NAME}/manifests/{managed.digest}"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 404


def test_tags_list_reflects_manifest_deletion(client, managed):
    assert client.delete(f"/v2/{NAME}/manifests/{TAG}").status_code == 202
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202
    tags = tag_list(client, NAME)
    assert len(tags) < len(managed.tags_before)
    assert tags == ["keep"]


# ------------------------------------------------------------------ manifest delete semantics

def test_delete_by_digest_removes_every_tag_pointing_at_it(client, managed):
    for tag in ("alias-1", "alias-2"):
        put_manifest_ok(client, NAME, tag, managed.body)
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202
    for tag in (TAG, "alias-1", "alias-2"):
        assert_error(client.get(f"/v2/{NAME}/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")
    assert tag_list(client, NAME) == ["keep"]
    assert client.get(f"/v2/{NAME}/manifests/keep").status_code == 200


def test_delete_tag_leaves_other_tags_of_the_same_manifest(client, managed):
    put_manifest_ok(client, NAME, "alias", managed.body)
    assert client.delete(f"/v2/{NAME}/manifests/{TAG}").status_code == 202
    resp = client.get(f"/v2/{NAME}/manifests/alias")
    assert resp.status_code == 200 and resp.get_data() == managed.body
    assert tag_list(client, NAME) == ["alias", "keep"]


@pytest.mark.parametrize("ref", ["no-such-tag", DUMMY_DIGEST])
def test_delete_unknown_manifest_is_404_manifest_unknown(client, managed, ref):
    assert_error(client.delete(f"/v2/{NAME}/manifests/{ref}"), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_twice_is_404_the_second_time(client, managed):
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202
    assert_error(client.delete(f"/v2/{NAME}/manifests/{managed.digest}"), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_in_unknown_repository_is_404(client):
    resp = client.delete(f"/v2/never/pushed/manifests/{DUMMY_DIGEST}")
    assert_error(resp, 404, {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"})


def test_manifest_can_be_pushed_again_after_deletion(client, managed):
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202
    assert push_manifest(client, NAME, TAG, managed.body).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/{TAG}").get_data() == managed.body
    assert TAG in tag_list(client, NAME)


def test_deleting_a_subject_with_referrers_keeps_the_referrers_listed(client, managed):
    """Referrers of a deleted subject stay listed (the spec allows dangling subjects)."""
    push_blob(client, NAME, EMPTY_BLOB)
    art = image_manifest(descriptor(OCI_EMPTY, EMPTY_BLOB), [descriptor(OCI_EMPTY, EMPTY_BLOB)],
                         artifact_type="application/vnd.example.sig",
                         subject=descriptor(OCI_MANIFEST, managed.body))
    assert push_manifest(client, NAME, sha256_digest(art), art).status_code == 201
    assert client.delete(f"/v2/{NAME}/manifests/{managed.digest}").status_code == 202
    assert [d["digest"] for d in referrers(client, NAME, managed.digest)] == [sha256_digest(art)]


def test_deleting_every_tag_leaves_an_empty_list(client):
    """The spec allows 404 NAME_UNKNOWN too; here the repository keeps its blobs, so it is still in the catalog."""
    image = make_image(client, "conformance/lonely", tag="only")
    assert client.delete(f"/v2/conformance/lonely/manifests/{image['manifest']}").status_code == 202
    resp = client.get("/v2/conformance/lonely/tags/list")
    assert resp.status_code == 200 and body_json(resp) == {"name": "conformance/lonely", "tags": []}


# ------------------------------------------------------------------ blob delete

def test_delete_blob_returns_202_and_blob_is_then_404(client, managed):
    config_digest, layer_digest = sha256_digest(managed.config), sha256_digest(CONFORMANCE_LAYER)
    for digest in (config_digest, layer_digest):
        assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    for digest in (config_digest, layer_digest):
        assert_error(client.get(f"/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        assert blob_status(client, NAME, digest) == 404


def test_delete_unknown_blob_is_404_blob_unknown(client, managed):
    assert_error(client.delete(f"/v2/{NAME}/blobs/{DUMMY_DIGEST}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_twice_is_404_the_second_time(client, managed):
    digest = sha256_digest(managed.config)
    assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    assert_error(client.delete(f"/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_only_affects_its_repository(client, managed):
    other = "conformance/management-mirror"
    digest = sha256_digest(managed.config)
    assert client.post(f"/v2/{other}/blobs/uploads/?mount={digest}&from={NAME}").status_code == 201
    assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    assert blob_status(client, NAME, digest) == 404
    resp = client.get(f"/v2/{other}/blobs/{digest}")
    assert resp.status_code == 200 and resp.get_data() == managed.config


def test_deleted_blob_can_be_pushed_again(client, managed):
    digest = sha256_digest(managed.config)
    assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    assert push_blob(client, NAME, managed.config) == digest
    assert client.get(f"/v2/{NAME}/blobs/{digest}").get_data() == managed.config
