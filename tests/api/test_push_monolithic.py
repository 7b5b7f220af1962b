"""Push, whole blobs: streamed uploads (PATCH without Content-Range) and monolithic ones.

Mirrors conformance/02_push_test.go of distribution-spec v1.1.1 (stored copy 11b8e3f):

Blob Upload Streamed
  - "PATCH request with blob in body should yield 202 response"
  - "PUT request to session URL with digest should yield 201 response"
Blob Upload Monolithic
  - "GET nonexistent blob should result in 404 response"
  - "POST request with digest and blob should yield a 201 or 202"
  - "GET request to blob URL from prior request should yield 200 or 404 based on response code"
  - "POST request should yield a session ID"
  - "PUT upload of a blob should yield a 201 Response"
  - "GET request to existing blob should yield 200 response"
  - "PUT upload of a layer blob should yield a 201 Response"
  - "GET request to existing layer should yield 200 response"
"""
from __future__ import annotations

import pytest

from tests.support.oci_client import (
    CONFORMANCE_LAYER, DUMMY_DIGEST, OCTET, assert_error, blob_body, blob_status, location, open_session, push_blob,
    push_blob_monolithic, random_config, sha256_digest, start_upload, with_query,
)
from tests.support.push_helpers import BLOB_A, NAME


# ------------------------------------------------------------------ streamed

def test_streamed_patch_without_content_range_yields_202_with_range(client):
    loc = open_session(client, NAME)
    resp = client.patch(loc, data=BLOB_A, headers=OCTET)
    assert resp.status_code == 202
    assert location(resp).startswith(f"/v2/{NAME}/blobs/uploads/")
    assert resp.headers.get("Range") == f"0-{len(BLOB_A) - 1}"


def test_streamed_put_to_session_with_digest_and_no_body_yields_201(client):
    resp = client.patch(open_session(client, NAME), data=BLOB_A, headers=OCTET)
    digest = sha256_digest(BLOB_A)
    resp = client.put(with_query(location(resp), digest=digest), headers=OCTET)
    assert resp.status_code == 201
    assert location(resp) == f"/v2/{NAME}/blobs/{digest}"
    assert resp.headers.get("Docker-Content-Digest") == digest
    assert blob_body(client, NAME, digest) == BLOB_A


def test_streamed_patches_without_content_range_append_in_order(client):
    parts = [b"alpha-", b"beta-", b"gamma"]
    loc, total = open_session(client, NAME), 0
    for part in parts:
        resp = client.patch(loc, data=part, headers=OCTET)
        assert resp.status_code == 202
        total += len(part)
        assert resp.headers.get("Range") == f"0-{total - 1}"
        loc = location(resp)
    digest = sha256_digest(b"".join(parts))
    assert client.put(with_query(loc, digest=digest)).status_code == 201
    assert blob_body(client, NAME, digest) == b"".join(parts)


# ------------------------------------------------------------------ monolithic

def test_get_nonexistent_blob_is_404(client):
    assert_error(client.get(f"/v2/{NAME}/blobs/{DUMMY_DIGEST}"), 404, "BLOB_UNKNOWN")


def test_post_with_digest_and_blob_yields_201_with_blob_location(client):
    config = random_config()
    digest = sha256_digest(config)
    resp = client.post(f"/v2/{NAME}/blobs/uploads/?digest={digest}", data=config, headers=OCTET)
    assert resp.status_code == 201
    assert location(resp) == f"/v2/{NAME}/blobs/{digest}"
    assert resp.headers.get("Docker-Content-Digest") == digest
    # "GET request to blob URL from prior request should yield 200 or 404 based on response code"
    got = client.get(location(resp))
    assert got.status_code == 200 and got.get_data() == config


def test_post_yields_upload_session_with_location_range_and_uuid(client):
    resp = start_upload(client, NAME)
    assert resp.status_code == 202
    loc = location(resp)
    assert loc.startswith(f"/v2/{NAME}/blobs/uploads/")
    assert resp.headers.get("Range") == "0-0"
    uuid = resp.headers.get("Docker-Upload-UUID")
    assert uuid and uuid in loc
    other = start_upload(client, NAME)
    assert other.headers.get("Docker-Upload-UUID") != uuid
    assert location(other) != loc


@pytest.mark.parametrize("kind", ["config", "layer"])
def test_put_upload_of_whole_blob_yields_201_and_blob_is_pullable(client, kind):
    data = random_config() if kind == "config" else CONFORMANCE_LAYER
    digest = sha256_digest(data)
    resp = client.put(with_query(open_session(client, NAME), digest=digest), data=data, headers=OCTET)
    assert resp.status_code == 201
    assert location(resp) == f"/v2/{NAME}/blobs/{digest}"
    assert resp.headers.get("Docker-Content-Digest") == digest
    assert blob_body(client, NAME, digest) == data


def test_empty_blob_can_be_pushed_and_pulled(client):
    digest = push_blob(client, NAME, b"")
    resp = client.get(f"/v2/{NAME}/blobs/{digest}")
    assert resp.status_code == 200 and resp.get_data() == b""
    assert resp.headers.get("Docker-Content-Digest") == sha256_digest(b"")


def test_pushing_an_existing_blob_again_succeeds(client):
    assert push_blob(client, NAME, BLOB_A) == push_blob_monolithic(client, NAME, BLOB_A)
    assert blob_body(client, NAME, sha256_digest(BLOB_A)) == BLOB_A


def test_sha512_digest_is_accepted_for_upload(client):
    import hashlib
    digest = "sha512:" + hashlib.sha512(BLOB_A).hexdigest()
    resp = client.put(with_query(open_session(client, NAME), digest=digest), data=BLOB_A, headers=OCTET)
    assert resp.status_code == 201
    assert blob_body(client, NAME, digest) == BLOB_A


# ------------------------------------------------------------------ verification of a blob sent whole
# A blob sent in one body is hashed as it is written (services/blobs.UploadService.finish); one whose
# session already held bytes is read back. Both must refuse a body that does not match its digest.

def test_whole_body_put_with_another_digest_is_refused_and_nothing_visible(client):
    loc = open_session(client, NAME)
    resp = client.put(with_query(loc, digest=sha256_digest(BLOB_A + b"x")), data=BLOB_A, headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, sha256_digest(BLOB_A)) == 404
    assert client.get(loc).status_code == 404  # the session is gone


def test_whole_body_post_with_another_digest_is_refused_and_nothing_visible(client):
    resp = client.post(with_query(f"/v2/{NAME}/blobs/uploads/", digest=sha256_digest(b"other")), data=BLOB_A,
                       headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, sha256_digest(BLOB_A)) == 404


def test_last_chunk_put_is_verified_over_the_whole_session(client):
    loc = location(client.patch(open_session(client, NAME), data=BLOB_A[:1000], headers=OCTET))
    wrong = client.put(with_query(loc, digest=sha256_digest(BLOB_A[1000:])), data=BLOB_A[1000:], headers=OCTET)
    assert_error(wrong, 400, "DIGEST_INVALID")
    loc = location(client.patch(open_session(client, NAME), data=BLOB_A[:1000], headers=OCTET))
    right = client.put(with_query(loc, digest=sha256_digest(BLOB_A)), data=BLOB_A[1000:], headers=OCTET)
    assert right.status_code == 201, right.get_data()
    assert client.get(f"/v2/{NAME}/blobs/{sha256_digest(BLOB_A)}").get_data() == BLOB_A
