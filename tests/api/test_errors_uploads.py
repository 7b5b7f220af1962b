"""Bad input, blobs and uploads: malformed digests (on blob, manifest and upload endpoints), unknown
upload ids, digest and size mismatches; nothing half-done becomes visible.

Every rejection is an OCI error envelope (01_pull_test.go "400 response body should contain
OCI-conforming JSON message": the envelope shape and a code from setup.go's errorCodes list).
The 404s for unknown blobs and uploads are those used throughout the suite's 01..04.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support.oci_client import (
    OCTET, assert_error, blob_status, location, make_image, open_session, push_blob, sha256_digest,
    with_query,
)
from tests.support.errors_helpers import NAME


# ------------------------------------------------------------------ digests

BAD_DIGESTS = [
    "sha256:abc", "sha256:" + "A" * 64, "sha256:" + "g" * 64, "sha256:" + "a" * 65, "sha256:",
    "sha512:" + "a" * 64, "md5:" + "0" * 32, "foo:bar", ":" + "a" * 64, "sha256:totallywrong",
    "SHA256:" + "a" * 64,
]
BAD_DIGEST_IDS = [d if len(d) < 24 else d[:16] + f"..len{len(d)}" for d in BAD_DIGESTS]


@pytest.mark.parametrize("method", ["get", "delete"])
@pytest.mark.parametrize("digest", BAD_DIGESTS + ["sha256"], ids=BAD_DIGEST_IDS + ["sha256"])
def test_malformed_blob_digest_is_400_digest_invalid(client, digest, method):
    push_blob(client, NAME, b"something")
    assert_error(getattr(client, method)(f"/v2/{NAME}/blobs/{digest}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=BAD_DIGEST_IDS)
def test_malformed_blob_digest_on_head_is_400(client, digest):
    push_blob(client, NAME, b"something")
    assert client.head(f"/v2/{NAME}/blobs/{digest}").status_code == 400


@pytest.mark.parametrize("method", ["get", "delete"])
@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=BAD_DIGEST_IDS)
def test_malformed_manifest_digest_is_400_digest_invalid(client, digest, method):
    make_image(client, NAME)
    assert_error(getattr(client, method)(f"/v2/{NAME}/manifests/{digest}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=BAD_DIGEST_IDS)
def test_malformed_digest_on_upload_finish_is_400_and_nothing_visible(client, digest):
    loc = open_session(client, NAME)
    resp = client.put(with_query(loc, digest=digest), data=b"payload", headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, sha256_digest(b"payload")) == 404


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=BAD_DIGEST_IDS)
def test_malformed_digest_on_monolithic_post_is_400_and_nothing_visible(client, digest):
    resp = client.post(with_query(f"/v2/{NAME}/blobs/uploads/", digest=digest), data=b"payload",
                       headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, sha256_digest(b"payload")) == 404


def test_upload_put_without_digest_is_400_and_nothing_visible(client):
    loc = open_session(client, NAME)
    resp = client.put(loc, data=b"payload", headers=OCTET)
    assert_error(resp, 400, {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"})
    assert blob_status(client, NAME, sha256_digest(b"payload")) == 404


# ------------------------------------------------------------------ upload ids

UNKNOWN_UPLOADS = ["0" * 32, uuid.uuid4().hex, str(uuid.uuid4()), "not-a-session", "..", ".",
                   "..%2f..%2fdata", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%2e%2e%2f%2e%2e"]
UPLOAD_METHODS = {
    "get": lambda c, url: c.get(url),
    "patch": lambda c, url: c.patch(url, data=b"chunk", headers=OCTET),
    "put": lambda c, url: c.put(with_query(url, digest=sha256_digest(b"chunk")), data=b"chunk", headers=OCTET),
    "delete": lambda c, url: c.delete(url),
}


@pytest.mark.parametrize("method", sorted(UPLOAD_METHODS))
@pytest.mark.parametrize("upload_id", UNKNOWN_UPLOADS)
def test_unknown_upload_id_is_404_blob_upload_unknown(client, upload_id, method):
    open_session(client, NAME)  # the repository has a live session, just not this one
    resp = UPLOAD_METHODS[method](client, f"/v2/{NAME}/blobs/uploads/{upload_id}")
    if "%2f" in upload_id.lower():
        # %2F decodes to "/" before routing: no upload route matches at all, so any
        # 404 envelope is spec-conformant (the contract prefers BLOB_UPLOAD_UNKNOWN).
        assert_error(resp, 404)
    else:
        assert_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")
    assert blob_status(client, NAME, sha256_digest(b"chunk")) == 404


@pytest.mark.parametrize("method", sorted(UPLOAD_METHODS))
def test_upload_session_cannot_be_used_from_another_repository(client, method):
    loc = open_session(client, NAME)
    foreign = loc.replace(f"/v2/{NAME}/", "/v2/conformance/intruder/", 1)
    assert foreign != loc
    assert_error(UPLOAD_METHODS[method](client, foreign), 404, "BLOB_UPLOAD_UNKNOWN")
    assert blob_status(client, "conformance/intruder", sha256_digest(b"chunk")) == 404
    assert client.get(loc).status_code == 204  # the real session is untouched


# ------------------------------------------------------------------ digest mismatch

def test_wrong_digest_on_put_is_400_and_nothing_visible(client):
    claimed = sha256_digest(b"what the client claims")
    resp = client.put(with_query(open_session(client, NAME), digest=claimed), data=b"what it sends",
                      headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, claimed) == 404
    assert blob_status(client, NAME, sha256_digest(b"what it sends")) == 404


def test_wrong_digest_on_monolithic_post_is_400_and_nothing_visible(client):
    claimed = sha256_digest(b"claimed")
    resp = client.post(f"/v2/{NAME}/blobs/uploads/?digest={claimed}", data=b"sent", headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, claimed) == 404
    assert blob_status(client, NAME, sha256_digest(b"sent")) == 404


def test_wrong_digest_after_chunks_is_400_and_nothing_visible(client):
    loc = open_session(client, NAME)
    resp = client.patch(loc, data=b"part-one", headers={**OCTET, "Content-Range": "0-7"})
    assert resp.status_code == 202
    claimed = sha256_digest(b"part-one-and-more")
    resp = client.put(with_query(location(resp), digest=claimed), data=b"-and-less",
                      headers={**OCTET, "Content-Range": "8-16"})
    assert_error(resp, 400, "DIGEST_INVALID")
    for data in (b"part-one-and-more", b"part-one-and-less", b"part-one"):
        assert blob_status(client, NAME, sha256_digest(data)) == 404


def test_sha512_claim_for_other_content_is_400(client):
    import hashlib
    claimed = "sha512:" + hashlib.sha512(b"other").hexdigest()
    resp = client.put(with_query(open_session(client, NAME), digest=claimed), data=b"sent", headers=OCTET)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, claimed) == 404


# ------------------------------------------------------------------ size mismatch

def assert_session_still_empty(client, loc):
    """A rejected request appended nothing: a chunk from offset 0 is still accepted."""
    resp = client.patch(loc, data=b"12345", headers={**OCTET, "Content-Range": "0-4"})
    assert resp.status_code == 202, resp.get_data()
    assert resp.headers.get("Range") == "0-4"


@pytest.mark.parametrize("content_range,content_length", [
    ("0-9", None),   # range longer than the body
    ("0-1", None),   # range shorter than the body
    ("0-4", "9"),    # Content-Length longer than the body (the body is cut short)
    ("0-4", "3"),    # Content-Length shorter than the range
], ids=["range-long", "range-short", "length-long", "length-short"])
def test_patch_whose_range_or_length_disagrees_with_body_is_rejected(client, content_range, content_length):
    loc = open_session(client, NAME)
    # the test client derives Content-Length from the body; override it in the environ
    overrides = {"CONTENT_LENGTH": content_length} if content_length else {}
    resp = client.patch(loc, data=b"abcde", headers={**OCTET, "Content-Range": content_range},
                        environ_overrides=overrides)
    assert resp.status_code in (400, 416), resp.get_data()
    assert_error(resp, resp.status_code)
    assert_session_still_empty(client, loc)


@pytest.mark.parametrize("content_range", ["abc", "4-0", "-5", "0-", "0-4-9", "x0-4"])
def test_patch_with_malformed_content_range_is_rejected(client, content_range):
    loc = open_session(client, NAME)
    resp = client.patch(loc, data=b"abcde", headers={**OCTET, "Content-Range": content_range})
    assert resp.status_code in (400, 416)
    assert_error(resp, resp.status_code)
    assert_session_still_empty(client, loc)


def assert_final_chunk_rejected(client, content_range: str) -> None:
    """After a first chunk ``head-``, a PUT of ``tail`` with ``content_range`` is rejected; nothing is visible."""
    loc = open_session(client, NAME)
    resp = client.patch(loc, data=b"head-", headers={**OCTET, "Content-Range": "0-4"})
    data = b"head-tail"
    resp = client.put(with_query(location(resp), digest=sha256_digest(data)), data=b"tail",
                      headers={**OCTET, "Content-Range": content_range})
    assert resp.status_code in (400, 416)
    assert_error(resp, resp.status_code)
    assert blob_status(client, NAME, sha256_digest(data)) == 404


def test_put_final_chunk_whose_range_disagrees_is_rejected_and_nothing_visible(client):
    assert_final_chunk_rejected(client, "5-20")


def test_put_final_chunk_at_wrong_offset_is_rejected_and_nothing_visible(client):
    assert_final_chunk_rejected(client, "7-10")


def test_monolithic_post_with_content_length_longer_than_body_is_rejected(client):
    data = b"short body"
    resp = client.post(f"/v2/{NAME}/blobs/uploads/?digest={sha256_digest(data)}", data=data,
                       headers=OCTET, environ_overrides={"CONTENT_LENGTH": str(len(data) + 10)})
    assert resp.status_code in (400, 416)
    assert_error(resp, resp.status_code)
    assert blob_status(client, NAME, sha256_digest(data)) == 404
