"""Push, chunked uploads: PATCH with Content-Range in order, out of order and retried, upload status,
cancellation and reuse of a finished session.

Mirrors conformance/02_push_test.go of distribution-spec v1.1.1 (stored copy 11b8e3f):

Blob Upload Chunked
  - "Out-of-order blob upload should return 416"
  - "PATCH request with first chunk should return 202"
  - "Retry previous blob chunk should return 416"
  - "Get on stale blob upload should return 204 with a range and location"
  - "PATCH request with second chunk should return 202"
  - "PUT request with digest should return 201"
  - (pre-v1.1 suite) "PUT request with final chunk should return 201"
"""
from __future__ import annotations

import pytest

from tests.support.oci_client import (
    OCTET, assert_error, blob_body, blob_status, location, open_session, push_blob_chunked, random_blob,
    sha256_digest, start_upload, with_query,
)
from tests.support.push_helpers import BLOB_A, NAME


def chunked_blob(post_resp, size: int = 42):
    """The suite's testBlobB split in two; bigger if OCI-Chunk-Min-Length demands it."""
    min_len = int(post_resp.headers.get("OCI-Chunk-Min-Length") or 0)
    if min_len > size // 2 + 1:
        size = min_len * 2 - 2
    blob = random_blob(size, 2)
    cut = size // 2 + 1
    return blob, blob[:cut], blob[cut:], f"0-{cut - 1}", f"{cut}-{size - 1}"


def patch_chunk(client, loc, chunk, content_range):
    return client.patch(loc, data=chunk, headers={
        **OCTET, "Content-Range": content_range, "Content-Length": str(len(chunk))})


def test_out_of_order_first_chunk_is_416_blob_upload_invalid(client):
    post = start_upload(client, NAME)
    blob, _, chunk2, _, range2 = chunked_blob(post)
    resp = patch_chunk(client, location(post), chunk2, range2)
    assert_error(resp, 416, "BLOB_UPLOAD_INVALID")
    assert resp.headers.get("Range")
    assert blob_status(client, NAME, sha256_digest(blob)) == 404


def test_patch_first_chunk_returns_202_with_chunk_range(client):
    post = start_upload(client, NAME)
    _, chunk1, _, range1, _ = chunked_blob(post)
    resp = patch_chunk(client, location(post), chunk1, range1)
    assert resp.status_code == 202
    assert resp.headers.get("Range") == range1
    assert location(resp).startswith(f"/v2/{NAME}/blobs/uploads/")


@pytest.fixture
def after_first_chunk(client):
    post = start_upload(client, NAME)
    blob, chunk1, chunk2, range1, range2 = chunked_blob(post)
    first = patch_chunk(client, location(post), chunk1, range1)
    assert first.status_code == 202
    return {"stale": location(post), "blob": blob, "chunk1": chunk1, "chunk2": chunk2,
            "range1": range1, "range2": range2}


def test_retry_of_previous_chunk_on_stale_location_is_416_with_current_range(client, after_first_chunk):
    s = after_first_chunk
    resp = patch_chunk(client, s["stale"], s["chunk1"], s["range1"])
    assert_error(resp, 416, "BLOB_UPLOAD_INVALID")
    assert resp.headers.get("Range") == s["range1"]


def test_get_on_stale_upload_location_returns_204_with_range_and_location(client, after_first_chunk):
    s = after_first_chunk
    resp = client.get(s["stale"])
    assert resp.status_code == 204
    assert location(resp).startswith(f"/v2/{NAME}/blobs/uploads/")
    assert resp.headers.get("Range") == s["range1"]


def test_second_chunk_then_put_with_digest_completes_upload(client, after_first_chunk):
    """'PATCH request with second chunk should return 202' + 'PUT request with digest should return 201'."""
    s = after_first_chunk
    status = client.get(s["stale"])
    resp = patch_chunk(client, location(status), s["chunk2"], s["range2"])
    assert resp.status_code == 202
    assert resp.headers.get("Range") == f"0-{len(s['blob']) - 1}"
    digest = sha256_digest(s["blob"])
    done = client.put(with_query(location(resp), digest=digest), headers={**OCTET, "Content-Length": "0"})
    assert done.status_code == 201
    assert location(done) == f"/v2/{NAME}/blobs/{digest}"
    assert done.headers.get("Docker-Content-Digest") == digest
    assert blob_body(client, NAME, digest) == s["blob"]


def test_put_with_final_chunk_and_content_range_completes_upload(client, after_first_chunk):
    s = after_first_chunk
    digest = sha256_digest(s["blob"])
    resp = client.put(with_query(s["stale"], digest=digest), data=s["chunk2"], headers={
        **OCTET, "Content-Range": s["range2"], "Content-Length": str(len(s["chunk2"]))})
    assert resp.status_code == 201
    assert blob_body(client, NAME, digest) == s["blob"]


def test_rejected_chunk_leaves_upload_intact(client, after_first_chunk):
    s = after_first_chunk
    bad = patch_chunk(client, s["stale"], b"zz", f"{len(s['chunk1']) + 5}-{len(s['chunk1']) + 6}")
    assert bad.status_code == 416
    assert push_rest_and_check(client, s)


def push_rest_and_check(client, s) -> bool:
    resp = patch_chunk(client, s["stale"], s["chunk2"], s["range2"])
    assert resp.status_code == 202, resp.get_data()
    digest = sha256_digest(s["blob"])
    assert client.put(with_query(location(resp), digest=digest)).status_code == 201
    return blob_body(client, NAME, digest) == s["blob"]


@pytest.mark.parametrize("sizes", [[1, 1, 1], [100, 7], [1000, 1000, 1000, 1]])
def test_many_chunks_reassemble_to_the_exact_blob(client, sizes):
    data = random_blob(sum(sizes), 3)
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos:pos + size])
        pos += size
    digest = push_blob_chunked(client, NAME, chunks[:-1], final=chunks[-1])
    assert blob_body(client, NAME, digest) == data


def test_get_upload_status_of_fresh_session_is_204(client):
    loc = open_session(client, NAME)
    resp = client.get(loc)
    assert resp.status_code == 204
    assert location(resp).startswith(f"/v2/{NAME}/blobs/uploads/")
    assert resp.headers.get("Range")


def test_delete_upload_session_is_204_then_session_is_unknown(client):
    loc = open_session(client, NAME)
    assert client.patch(loc, data=b"partial", headers=OCTET).status_code == 202
    assert client.delete(loc).status_code == 204
    assert_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(loc, data=b"more", headers=OCTET), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.put(with_query(loc, digest=sha256_digest(b"partial"))), 404, "BLOB_UPLOAD_UNKNOWN")
    assert blob_status(client, NAME, sha256_digest(b"partial")) == 404


def test_completed_session_cannot_be_reused(client):
    loc = open_session(client, NAME)
    digest = sha256_digest(BLOB_A)
    assert client.put(with_query(loc, digest=digest), data=BLOB_A, headers=OCTET).status_code == 201
    assert_error(client.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(loc, data=b"x", headers=OCTET), 404, "BLOB_UPLOAD_UNKNOWN")
