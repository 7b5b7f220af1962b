"""Push workflow at the protocol level.

Mirrors conformance/02_push_test.go of distribution-spec v1.1.1 (stored copy
11b8e3f), plus the specs a later stored copy adds (marked [later]):

Setup
  - [later] "Upload empty JSON blob needed for further tests", "Upload blob needed for further tests"
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
Blob Upload Chunked
  - "Out-of-order blob upload should return 416"
  - "PATCH request with first chunk should return 202"
  - "Retry previous blob chunk should return 416"
  - "Get on stale blob upload should return 204 with a range and location"
  - "PATCH request with second chunk should return 202"
  - "PUT request with digest should return 201"
  - (pre-v1.1 suite) "PUT request with final chunk should return 201"
Cross-Repository Blob Mount
  - "Cross-mounting of a blob without the from argument should yield session id"
  - "POST request to mount another repository's blob should return 201 or 202"
  - "GET request to test digest within cross-mount namespace should return 200"
  - "Cross-mounting of nonexistent blob should yield session id"
  - "Cross-mounting without from, and automatic content discovery enabled/disabled
    should return a 201/202" (either is accepted; the outcome must be consistent)
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

import random

import pytest

from oci_client import (
    CONFORMANCE_LAYER, DUMMY_DIGEST, EMPTY_BLOB, EMPTY_DIGEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX,
    OCI_LAYER_GZIP, OCI_MANIFEST, assert_error, blob_status, conformance_manifest, descriptor,
    go_json, image_index, image_manifest, location, make_image, open_session, push_blob,
    push_blob_chunked, push_blob_monolithic, push_manifest, put_manifest_ok, random_config,
    sha256_digest, start_upload, with_query,
)

NAME = "conformance/push-test"
CROSS = "conformance/crossmount-test"
OCTET = {"Content-Type": "application/octet-stream"}
ARTIFACT_A = "application/vnd.nhl.peanut.butter.bagel"
REF_BLOB_A = b"NHL Peanut Butter on my NHL bagel"


def random_blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


BLOB_A = random_blob(42, 1)  # testBlobA


def blob_body(client, name: str, digest: str) -> bytes | None:
    resp = client.get(f"/v2/{name}/blobs/{digest}")
    return resp.get_data() if resp.status_code == 200 else None


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


# ------------------------------------------------------------------ chunked

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
    return dict(stale=location(post), blob=blob, chunk1=chunk1, chunk2=chunk2,
                range1=range1, range2=range2)


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


# ------------------------------------------------------------------ cross-repository mount

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


# ------------------------------------------------------------------ manifests

def test_get_nonexistent_manifest_is_404(client):
    assert client.get(f"/v2/{NAME}/manifests/.INVALID_MANIFEST_NAME").status_code == 404


@pytest.fixture
def pushed_blobs(client):
    """config[1] and the layer, as in the suite's monolithic section."""
    config = random_config()
    push_blob(client, NAME, config)
    push_blob(client, NAME, CONFORMANCE_LAYER)
    return config


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
