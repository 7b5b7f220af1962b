"""Manifests Go clients cannot decode are refused at the push (issue #10, item 14).

containerd, Docker and skopeo decode a pulled manifest with Go's encoding/json into the image-spec
structs: ``"schemaVersion": 2.0`` or ``2e0``, a platform ``os`` that is a number, an ``architecture``
that is a list, a ``size`` of ``1.0`` all fail there. The registry refuses them with
``400 MANIFEST_INVALID`` naming the field, and stores nothing.
"""
from __future__ import annotations

import json

import pytest

from tests.support.oci_client import (
    OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, assert_error, descriptor, make_image, push_blob,
    push_manifest, random_config, sha256_digest, tag_list,
)

NAME = "types/app"


@pytest.fixture
def blobs(client):
    config = random_config()
    push_blob(client, NAME, config)
    push_blob(client, NAME, b"layer")
    return descriptor(OCI_CONFIG, config), descriptor(OCI_LAYER_GZIP, b"layer")


def image_text(config: dict, layer: dict, version: str = "2", size: str | None = None) -> bytes:
    """An image manifest written by hand, so that number spellings survive (json.dumps would normalise)."""
    layer_size = size if size is not None else str(layer["size"])
    return (f'{{"schemaVersion": {version}, "mediaType": "{OCI_MANIFEST}", "config": {json.dumps(config)}, '
            f'"layers": [{{"mediaType": "{layer["mediaType"]}", "digest": "{layer["digest"]}", '
            f'"size": {layer_size}}}]}}').encode()


def refused(client, body: bytes, media_type: str, reason: str) -> None:
    """Pushed by tag and by digest: 400 MANIFEST_INVALID with the reason; nothing stored."""
    digest = sha256_digest(body)
    for reference in ("bad", digest):
        doc = assert_error(push_manifest(client, NAME, reference, body, media_type), 400, "MANIFEST_INVALID")
        assert doc["errors"][0]["message"] == reason
    assert client.head(f"/v2/{NAME}/manifests/{digest}").status_code == 404
    assert "bad" not in tag_list(client, NAME)


@pytest.mark.parametrize("version", ["2.0", "2e0", "0.2e1", "true", '"2"'])
def test_schema_version_must_be_the_integer_2(client, blobs, version):
    refused(client, image_text(*blobs, version=version), OCI_MANIFEST, "schemaVersion must be the integer 2")


def test_the_same_manifest_with_an_integer_is_accepted(client, blobs):
    body = image_text(*blobs)
    assert push_manifest(client, NAME, "good", body).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/good").get_data() == body


@pytest.mark.parametrize("size", ["9.0", "9e0", "9223372036854775808"])
def test_sizes_are_int64_integers(client, blobs, size):
    refused(client, image_text(*blobs, size=size), OCI_MANIFEST, "layers[0].size must be a non-negative integer")


@pytest.mark.parametrize("platform, reason", [
    ({"os": 7, "architecture": "amd64"}, "manifests[0].platform.os must be a string"),
    ({"os": "linux", "architecture": ["arm64"]}, "manifests[0].platform.architecture must be a string"),
    ({"os": "linux", "architecture": "arm", "variant": 7}, "manifests[0].platform.variant must be a string"),
    ({"os": "windows", "architecture": "amd64", "os.version": 10.0},
     "manifests[0].platform.os.version must be a string"),
    ({"os": "windows", "architecture": "amd64", "os.features": "win32k"},
     "manifests[0].platform.os.features must be a list of strings"),
])
def test_index_platform_fields_are_typed(client, platform, reason):
    child = make_image(client, NAME, tag=None)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child["manifest"], "size": child["size"],
         "platform": platform}]}).encode()
    refused(client, body, OCI_INDEX, reason)
