"""Manifest parsing: the shapes we accept and the reasons we refuse."""
import json

import pytest

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import mediatypes as mt
from registry_ext.oci.manifest import parse_manifest
from registry_ext.services.manifest_entry import index_entry
from registry_ext.storage import ManifestRecord

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def image(**extra):
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 7},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 9}]}
    doc.update(extra)
    return doc


def parse(doc, content_type=mt.OCI_MANIFEST):
    return parse_manifest(json.dumps(doc).encode(), content_type)


def test_image_manifest():
    manifest = parse(image())
    assert manifest.media_type == mt.OCI_MANIFEST
    assert [b.digest for b in manifest.required_blobs()] == [D1, D2]
    assert manifest.artifact_type == "application/vnd.oci.image.config.v1+json"
    assert manifest.subject is None


def test_artifact_with_subject_and_annotations():
    doc = image(artifactType="application/x.sig", subject={"mediaType": mt.OCI_MANIFEST, "digest": D1, "size": 3},
                annotations={"k": "v"})
    manifest = parse(doc)
    assert manifest.artifact_type == "application/x.sig"
    assert manifest.subject.digest == D1
    entry = index_entry(ManifestRecord(D2, mt.OCI_MANIFEST, 10, 1), manifest, None)  # what referrers list
    assert {k: entry[k] for k in ("mediaType", "size", "artifactType", "annotations", "subject")} == {
        "mediaType": mt.OCI_MANIFEST, "size": 10, "artifactType": "application/x.sig", "annotations": {"k": "v"},
        "subject": D1}


def test_index_and_docker_list():
    doc = {"schemaVersion": 2, "mediaType": mt.DOCKER_LIST,
           "manifests": [{"mediaType": mt.DOCKER_MANIFEST, "digest": D1, "size": 5,
                          "platform": {"architecture": "amd64", "os": "linux"}}]}
    manifest = parse(doc, mt.DOCKER_LIST)
    assert manifest.is_index and [c.digest for c in manifest.children] == [D1]
    assert manifest.required_blobs() == []


def test_media_type_inferred_without_content_type_or_body_type():
    doc = image()
    del doc["mediaType"]
    assert parse(doc, None).media_type == mt.OCI_MANIFEST
    assert parse({"schemaVersion": 2, "manifests": []}, "").media_type == mt.OCI_INDEX


def test_content_type_used_when_body_has_none():
    doc = image()
    del doc["mediaType"]
    assert parse(doc, mt.DOCKER_MANIFEST).media_type == mt.DOCKER_MANIFEST


def test_foreign_layers_are_not_required():
    doc = image()
    doc["layers"].append({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                          "digest": "sha256:" + "3" * 64, "size": 1, "urls": ["https://example.invalid/x"]})
    assert len(parse(doc).required_blobs()) == 2


@pytest.mark.parametrize("body, content_type, reason", [
    (b"not json", mt.OCI_MANIFEST, "not valid JSON"),
    (b"[]", mt.OCI_MANIFEST, "JSON object"),
    (json.dumps(image(schemaVersion=1)).encode(), mt.OCI_MANIFEST, "schemaVersion"),
    (json.dumps(image(schemaVersion=True)).encode(), mt.OCI_MANIFEST, "schemaVersion"),
    (json.dumps(image()).encode(), mt.DOCKER_MANIFEST, "contradicts"),
    (json.dumps(image(mediaType="application/x-other")).encode(), None, "unsupported manifest media type"),
    (json.dumps(image(config=None)).encode(), mt.OCI_MANIFEST, "config must be a descriptor"),
    (json.dumps(image(config={"mediaType": "x", "digest": "bad", "size": 1})).encode(), None, "config.digest"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": -1})).encode(), None, "config.size"),
    (json.dumps(image(layers={})).encode(), None, "layers must be a list"),
    (json.dumps(image(annotations={"a": 1})).encode(), None, "annotations"),
    (json.dumps(image(subject="x")).encode(), None, "subject must be a descriptor"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "config": {}}).encode(), None, "does not match"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}).encode(), None, "no config"),
])
def test_invalid_manifests(body, content_type, reason):
    with pytest.raises(RegistryError) as info:
        parse_manifest(body, content_type)
    assert info.value.code is ErrorCode.MANIFEST_INVALID
    assert reason in info.value.message


def index(platform):
    return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
            "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": D1, "size": 5, "platform": platform}]}


# What Go's encoding/json refuses to decode into the image-spec structs (specs-go/v1), so that
# containerd, Docker and skopeo would fail on after pulling it: each is refused here with its field.
@pytest.mark.parametrize("raw, reason", [
    (b'{"schemaVersion": 2.0, "config": {}}', "schemaVersion must be the integer 2"),
    (b'{"schemaVersion": 2e0, "config": {}}', "schemaVersion must be the integer 2"),
    (b'{"schemaVersion": 20e-1, "config": {}}', "schemaVersion must be the integer 2"),
    (b'{"schemaVersion": "2", "config": {}}', "schemaVersion must be the integer 2"),
    (b'{"schemaVersion": true, "config": {}}', "schemaVersion must be the integer 2"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 1.0})).encode(),
     "config.size must be a non-negative integer"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 2**63})).encode(),
     "config.size must be a non-negative integer"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 1, "urls": ""})).encode(),
     "config.urls must be a list of strings"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 1, "urls": {}})).encode(),
     "config.urls must be a list of strings"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 1, "data": 5})).encode(),
     "config.data must be a base64 string"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 1, "data": "not base64!"})).encode(),
     "config.data is not valid base64"),
    (json.dumps(image(config={"mediaType": "x", "digest": D1, "size": 1, "artifactType": 3})).encode(),
     "config.artifactType must be a string"),
    (json.dumps(index({"os": 7, "architecture": "amd64"})).encode(), "manifests[0].platform.os must be a string"),
    (json.dumps(index({"os": "linux", "architecture": ["amd64"]})).encode(),
     "manifests[0].platform.architecture must be a string"),
    (json.dumps(index({"os": "linux", "architecture": "arm64", "variant": 8})).encode(),
     "manifests[0].platform.variant must be a string"),
    (json.dumps(index({"os": "windows", "architecture": "amd64", "os.version": 10})).encode(),
     "manifests[0].platform.os.version must be a string"),
    (json.dumps(index({"os": "windows", "architecture": "amd64", "os.features": "win32k"})).encode(),
     "manifests[0].platform.os.features must be a list of strings"),
    (json.dumps(index({"os": "linux", "architecture": "amd64", "features": [1]})).encode(),
     "manifests[0].platform.features must be a list of strings"),
    (json.dumps(index("linux/amd64")).encode(), "manifests[0].platform must be an object"),
])
def test_json_types_go_clients_cannot_decode_are_refused(raw, reason):
    with pytest.raises(RegistryError) as info:
        parse_manifest(raw, None)
    assert info.value.code is ErrorCode.MANIFEST_INVALID
    assert info.value.message == reason


def test_what_go_decodes_is_accepted():
    """null for optional fields (Go leaves them empty), base64 with line breaks, typed platform fields."""
    doc = index({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1",
                 "os.features": ["win32k"], "variant": None, "features": None})
    doc.update(annotations=None, subject=None, artifactType=None)
    manifest = parse(doc, mt.OCI_INDEX)
    assert manifest.children[0].platform["os.version"] == "10.0.17763.1"
    doc = image(layers=None, config={"mediaType": "x", "digest": D1, "size": 2**63 - 1, "urls": None,
                                     "data": "e30=\n", "annotations": None, "platform": None})
    assert parse(doc).layers == () and parse(doc).config.size == 2**63 - 1
