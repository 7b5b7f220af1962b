"""Bad input, manifests: invalid tags, malformed manifests, missing referenced blobs, the 4 MiB limit and
digest mismatches on PUT; nothing half-done becomes visible.

Every rejection is an OCI error envelope (01_pull_test.go "400 response body should contain
OCI-conforming JSON message": the envelope shape and a code from setup.go's errorCodes list).
"""
from __future__ import annotations

import pytest

from tests.support.oci_client import (
    EMPTY_BLOB, EMPTY_DIGEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, assert_error, blob_status,
    conformance_manifest, descriptor, go_json, image_index, image_manifest, make_image, push_blob,
    push_config_and_layer, push_manifest, random_config, sha256_digest, tag_list,
)
from tests.support.errors_helpers import NAME


# ------------------------------------------------------------------ tags

@pytest.mark.parametrize("tag", ["-tag", ".tag", "t" * 129, "tag!", "t@g", "ta+g", "tag,x"])
def test_invalid_tag_on_put_is_400_and_not_stored(client, tag):
    image = make_image(client, NAME, tag="ok")
    resp = push_manifest(client, NAME, tag, image["body"])
    assert_error(resp, 400)
    assert tag_list(client, NAME) == ["ok"]


@pytest.mark.parametrize("tag", ["_tag", "T" * 128, "a.b-c_D9", "0", "sha256"])
def test_edge_valid_tags_are_accepted(client, tag):
    image = make_image(client, NAME, tag=None)
    assert push_manifest(client, NAME, tag, image["body"]).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/{tag}").get_data() == image["body"]
    assert tag in tag_list(client, NAME)


# ------------------------------------------------------------------ manifest validation

def nothing_stored(client, ref: str, body: bytes):
    assert client.get(f"/v2/{NAME}/manifests/{ref}").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/{sha256_digest(body)}").status_code == 404


@pytest.fixture
def blobs(client):
    return push_config_and_layer(client, NAME)


def malformed_manifests(config: bytes) -> dict[str, tuple[bytes, str]]:
    good_config = descriptor(OCI_CONFIG, config)
    base = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": good_config, "layers": []}
    cases = {
        "not-json": b"blablabla", "truncated-json": b'{"schemaVersion": 2,', "json-array": b"[]",
        "json-string": b'"manifest"', "empty-body": b"",
        "schema-1": go_json({**base, "schemaVersion": 1}), "schema-3": go_json({**base, "schemaVersion": 3}),
        "schema-string": go_json({**base, "schemaVersion": "2"}),
        "schema-missing": go_json({k: v for k, v in base.items() if k != "schemaVersion"}),
        "config-missing": go_json({k: v for k, v in base.items() if k != "config"}),
        "layers-not-list": go_json({**base, "layers": {"a": 1}}),
        "config-bad-digest": go_json({**base, "config": {**good_config, "digest": "sha256:nothex"}}),
        "config-negative-size": go_json({**base, "config": {**good_config, "size": -1}}),
        "annotations-not-strings": go_json({**base, "annotations": {"a": 1}}),
    }
    out = {k: (v, OCI_MANIFEST) for k, v in cases.items()}
    out["index-body-manifest-type"] = (go_json({**base, "mediaType": OCI_INDEX}), OCI_MANIFEST)
    out["manifest-body-index-type"] = (go_json(base), OCI_INDEX)
    return out


MALFORMED_IDS = sorted(malformed_manifests(b"{}"))


@pytest.mark.parametrize("case", MALFORMED_IDS)
def test_malformed_manifest_is_400_manifest_invalid_and_not_stored(client, blobs, case):
    body, media_type = malformed_manifests(blobs)[case]
    assert_error(push_manifest(client, NAME, "bad", body, media_type), 400, "MANIFEST_INVALID")
    nothing_stored(client, "bad", body)


@pytest.mark.parametrize("missing", ["config", "layer", "both"])
def test_manifest_referencing_missing_blob_is_400_manifest_blob_unknown(client, missing):
    config, layer = random_config(), b"an unpushed layer"
    if missing == "layer":
        push_blob(client, NAME, config)
    if missing == "config":
        push_blob(client, NAME, layer)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor("application/vnd.oci.image.layer.v1.tar", layer)])
    assert_error(push_manifest(client, NAME, "broken", body), 400, "MANIFEST_BLOB_UNKNOWN")
    nothing_stored(client, "broken", body)


def test_manifest_referencing_blob_of_another_repository_is_400_manifest_blob_unknown(client):
    config = random_config()
    push_blob(client, "conformance/elsewhere", config)
    body = image_manifest(descriptor(OCI_CONFIG, config), [])
    assert_error(push_manifest(client, NAME, "borrowed", body), 400, "MANIFEST_BLOB_UNKNOWN")
    nothing_stored(client, "borrowed", body)


def test_subject_exemption_does_not_cover_missing_layers(client):
    subject = descriptor(OCI_MANIFEST, conformance_manifest(random_config()))
    body = image_manifest(descriptor(OCI_EMPTY, EMPTY_BLOB), [descriptor("application/x", b"never pushed")],
                          subject=subject, artifact_type="application/x")
    assert_error(push_manifest(client, NAME, "sig", body), 400, "MANIFEST_BLOB_UNKNOWN")
    nothing_stored(client, "sig", body)


def test_index_referencing_absent_child_manifest_is_rejected(client):
    """Spec v1.1.1 (Push): a manifest rejected for descriptors that 'reference a manifest or
    blob that does not exist ... MUST result in one or more MANIFEST_BLOB_UNKNOWN errors'."""
    child = conformance_manifest(random_config())
    body = image_index([descriptor(OCI_MANIFEST, child)])
    resp = push_manifest(client, NAME, "multi", body, OCI_INDEX)
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    nothing_stored(client, "multi", body)


def test_manifest_over_4_mib_is_413_and_not_stored(client, blobs):
    skeleton = conformance_manifest(blobs)
    body = skeleton[:-2] + b',\n\t"annotations": {"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}\n}'
    assert_error(push_manifest(client, NAME, "huge", body), 413, "MANIFEST_INVALID")
    nothing_stored(client, "huge", body)


def test_put_manifest_by_mismatching_digest_is_400_digest_invalid(client, blobs):
    body = conformance_manifest(blobs)
    other = sha256_digest(body + b" ")
    assert_error(push_manifest(client, NAME, other, body), 400, "DIGEST_INVALID")
    assert client.get(f"/v2/{NAME}/manifests/{other}").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/{sha256_digest(body)}").status_code == 404


def test_empty_config_digest_with_wrong_content_is_not_special(client):
    """Only the real empty descriptor is exempt: a different unpushed config is still missing."""
    body = image_manifest({"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{ }"), "size": 3}, [])
    assert_error(push_manifest(client, NAME, "fake-empty", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert blob_status(client, NAME, EMPTY_DIGEST) == 404
