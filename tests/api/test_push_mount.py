"""Push, cross-repository blob mounts (``POST ?mount=&from=``): with and without ``from``, absent blobs,
invalid source names, and blobs staying per repository until mounted.

Mirrors conformance/02_push_test.go of distribution-spec v1.1.1 (stored copy 11b8e3f):

Cross-Repository Blob Mount
  - "Cross-mounting of a blob without the from argument should yield session id"
  - "POST request to mount another repository's blob should return 201 or 202"
  - "GET request to test digest within cross-mount namespace should return 200"
  - "Cross-mounting of nonexistent blob should yield session id"
  - "Cross-mounting without from, and automatic content discovery enabled/disabled
    should return a 201/202" (either is accepted; the outcome must be consistent)
"""
from __future__ import annotations

import pytest

from tests.support.oci_client import (
    DUMMY_DIGEST, OCTET, assert_error, blob_body, blob_status, location, make_image, push_blob,
    sha256_digest, with_query,
)
from tests.support.push_helpers import BLOB_A, NAME

CROSS = "conformance/crossmount-test"


def test_mount_without_from_yields_upload_session(client):
    resp = client.post(f"/v2/{CROSS}/blobs/uploads/?mount={DUMMY_DIGEST}")
    assert resp.status_code == 202
    assert location(resp).startswith(f"/v2/{CROSS}/blobs/uploads/")
    assert blob_status(client, CROSS, DUMMY_DIGEST) == 404


def test_mount_from_repository_holding_the_blob_yields_201(client):
    digest = push_blob(client, NAME, BLOB_A)
    resp = client.post(f"/v2/{CROSS}/blobs/uploads/?mount={digest}&from={NAME}")
    assert resp.status_code == 201
    # "GET request to test digest within cross-mount namespace should return 200"
    assert location(resp) == f"/v2/{CROSS}/blobs/{digest}"
    assert resp.headers.get("Docker-Content-Digest") == digest
    got = client.get(location(resp))
    assert got.status_code == 200 and got.get_data() == BLOB_A


@pytest.mark.parametrize("source", ["holds-nothing", "never-created"])
def test_mount_of_blob_absent_from_source_yields_upload_session(client, source):
    if source == "holds-nothing":
        make_image(client, f"conformance/{source}")
    digest = sha256_digest(BLOB_A)
    resp = client.post(f"/v2/{CROSS}/blobs/uploads/?mount={digest}&from=conformance/{source}")
    assert resp.status_code == 202
    loc = location(resp)
    assert loc.startswith(f"/v2/{CROSS}/blobs/uploads/")
    assert blob_status(client, CROSS, digest) == 404
    # the session is usable: finish it with the real bytes
    assert client.put(with_query(loc, digest=digest), data=BLOB_A, headers=OCTET).status_code == 201
    assert blob_body(client, CROSS, digest) == BLOB_A


def test_mount_without_from_of_known_blob_is_201_or_a_real_session(client):
    digest = push_blob(client, NAME, BLOB_A)
    resp = client.post(f"/v2/{CROSS}/blobs/uploads/?mount={digest}")
    assert resp.status_code in (201, 202)
    if resp.status_code == 201:  # automatic content discovery
        assert location(resp) == f"/v2/{CROSS}/blobs/{digest}"
        assert blob_body(client, CROSS, digest) == BLOB_A
    else:
        assert location(resp).startswith(f"/v2/{CROSS}/blobs/uploads/")
        assert blob_status(client, CROSS, digest) == 404


@pytest.mark.parametrize("source", ["conformance/x/../push-test", "conformance/push-test/../push-test",
                                    "../repos/conformance/push-test", "conformance/Push-Test",
                                    "conformance//push-test", "/conformance/push-test"])
def test_mount_from_an_invalid_repository_name_never_mounts(client, source):
    digest = push_blob(client, NAME, BLOB_A)
    resp = client.post(f"/v2/{CROSS}/blobs/uploads/?mount={digest}&from={source}")
    if resp.status_code == 400:
        assert_error(resp, 400, "NAME_INVALID")
    else:
        assert resp.status_code == 202
        assert location(resp).startswith(f"/v2/{CROSS}/blobs/uploads/")
    assert blob_status(client, CROSS, digest) == 404


def test_blobs_are_per_repository_until_mounted(client):
    digest = push_blob(client, NAME, BLOB_A)
    assert_error(client.get(f"/v2/{CROSS}/blobs/{digest}"), 404, {"BLOB_UNKNOWN", "NAME_UNKNOWN"})
    assert client.head(f"/v2/{CROSS}/blobs/{digest}").status_code == 404
    assert client.post(f"/v2/{CROSS}/blobs/uploads/?mount={digest}&from={NAME}").status_code == 201
    assert client.head(f"/v2/{CROSS}/blobs/{digest}").status_code == 200
