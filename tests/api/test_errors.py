"""Bad input: every rejection is an OCI error envelope, and nothing half-done becomes visible.

Mirrors the error-code expectations of the conformance suite (v1.1.1):
  - 01_pull_test.go "400 response body should contain OCI-conforming JSON message"
    (the envelope shape and a code from setup.go's errorCodes list)
  - the 404s for unknown blobs/manifests/uploads used throughout 01..04
and the registry's contract for invalid names, tags, digests, upload ids,
digest and size mismatches, manifest validation, unknown query parameters
(``ns=docker.io``), unknown routes (404), unsupported methods (405), and
repository names containing route keywords (``a/blobs/b``, ``x/manifests``).
"""
from __future__ import annotations

import uuid

import pytest

from oci_client import (
    CONFORMANCE_LAYER, DUMMY_DIGEST, EMPTY_BLOB, EMPTY_DIGEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX,
    OCI_MANIFEST, assert_error, blob_status, body_json, conformance_manifest, descriptor, go_json,
    image_index, image_manifest, location, make_image, open_session, push_blob, push_blob_chunked,
    push_manifest, random_config, sha256_digest, tag_list, with_query,
)

NAME = "conformance/errors-test"
OCTET = {"Content-Type": "application/octet-stream"}

# ------------------------------------------------------------------ repository names

INVALID_NAMES = [
    "Upper", "a/B", "a..b", "a/../b", "a//b", "/a", "a/", "-a", "a-", "_a", "a_", ".a", "a.",
    "a___b", "a.-b", "a/-b", "a" * 256, "ab/" * 85 + "a",
]
NAME_ENDPOINTS = {
    "manifest-get": lambda c, n: c.get(f"/v2/{n}/manifests/latest"),
    "manifest-put": lambda c, n: c.put(f"/v2/{n}/manifests/latest", data=b"{}",
                                       headers={"Content-Type": OCI_MANIFEST}),
    "blob-get": lambda c, n: c.get(f"/v2/{n}/blobs/{DUMMY_DIGEST}"),
    "upload-post": lambda c, n: c.post(f"/v2/{n}/blobs/uploads/"),
    "tags-list": lambda c, n: c.get(f"/v2/{n}/tags/list"),
    "referrers": lambda c, n: c.get(f"/v2/{n}/referrers/{DUMMY_DIGEST}"),
}


@pytest.mark.parametrize("endpoint", sorted(NAME_ENDPOINTS))
@pytest.mark.parametrize("name", INVALID_NAMES, ids=lambda n: n if len(n) < 20 else f"len{len(n)}")
def test_invalid_repository_name_is_400_name_invalid(client, name, endpoint):
    assert_error(NAME_ENDPOINTS[endpoint](client, name), 400, "NAME_INVALID")


@pytest.mark.parametrize("name", ["a", "0", "a/b", "a.b", "a_b", "a__b", "a---b", "a-b.c_d/e__f",
                                  "a" * 255, "ab/" * 84 + "abc"])
def test_valid_repository_names_are_not_rejected(client, name):
    assert len(name) <= 255
    assert_error(client.get(f"/v2/{name}/tags/list"), 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("name", ["a" * 255, "ab/" * 84 + "abc", "a" * 64 + "/" + "b" * 190])
def test_longest_valid_names_can_hold_an_image(client, name):
    image = make_image(client, name, tag="latest")
    assert tag_list(client, name) == ["latest"]
    assert client.get(f"/v2/{name}/manifests/latest").get_data() == image["body"]


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


def test_put_final_chunk_whose_range_disagrees_is_rejected_and_nothing_visible(client):
    loc = open_session(client, NAME)
    resp = client.patch(loc, data=b"head-", headers={**OCTET, "Content-Range": "0-4"})
    data = b"head-tail"
    resp = client.put(with_query(location(resp), digest=sha256_digest(data)), data=b"tail",
                      headers={**OCTET, "Content-Range": "5-20"})
    assert resp.status_code in (400, 416)
    assert_error(resp, resp.status_code)
    assert blob_status(client, NAME, sha256_digest(data)) == 404


def test_put_final_chunk_at_wrong_offset_is_rejected_and_nothing_visible(client):
    loc = open_session(client, NAME)
    resp = client.patch(loc, data=b"head-", headers={**OCTET, "Content-Range": "0-4"})
    data = b"head-tail"
    resp = client.put(with_query(location(resp), digest=sha256_digest(data)), data=b"tail",
                      headers={**OCTET, "Content-Range": "7-10"})
    assert resp.status_code in (400, 416)
    assert_error(resp, resp.status_code)
    assert blob_status(client, NAME, sha256_digest(data)) == 404


def test_monolithic_post_with_content_length_longer_than_body_is_rejected(client):
    data = b"short body"
    resp = client.post(f"/v2/{NAME}/blobs/uploads/?digest={sha256_digest(data)}", data=data,
                       headers=OCTET, environ_overrides={"CONTENT_LENGTH": str(len(data) + 10)})
    assert resp.status_code in (400, 416)
    assert_error(resp, resp.status_code)
    assert blob_status(client, NAME, sha256_digest(data)) == 404


# ------------------------------------------------------------------ manifest validation

def nothing_stored(client, ref: str, body: bytes):
    assert client.get(f"/v2/{NAME}/manifests/{ref}").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/{sha256_digest(body)}").status_code == 404


@pytest.fixture
def blobs(client):
    config = random_config()
    push_blob(client, NAME, config)
    push_blob(client, NAME, CONFORMANCE_LAYER)
    return config


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


# ------------------------------------------------------------------ unknown query parameters

@pytest.fixture
def populated(client):
    image = make_image(client, NAME, tag="latest")
    return image


def ns_requests(client, image):
    q = "ns=docker.io&unknown=1"
    loc = open_session(client, NAME)
    blob = b"ns blob"
    return [
        ("base", lambda: client.get(f"/v2/?{q}"), 200),
        ("manifest-get", lambda: client.get(f"/v2/{NAME}/manifests/latest?{q}"), 200),
        ("manifest-head", lambda: client.head(f"/v2/{NAME}/manifests/{image['manifest']}?{q}"), 200),
        ("blob-get", lambda: client.get(f"/v2/{NAME}/blobs/{image['config']}?{q}"), 200),
        ("blob-head", lambda: client.head(f"/v2/{NAME}/blobs/{image['config']}?{q}"), 200),
        ("tags", lambda: client.get(f"/v2/{NAME}/tags/list?{q}"), 200),
        ("catalog", lambda: client.get(f"/v2/_catalog?{q}"), 200),
        ("referrers", lambda: client.get(f"/v2/{NAME}/referrers/{image['manifest']}?{q}"), 200),
        ("upload-post", lambda: client.post(f"/v2/{NAME}/blobs/uploads/?{q}"), 202),
        ("upload-patch", lambda: client.patch(f"{loc}{'&' if '?' in loc else '?'}{q}", data=blob[:3],
                                              headers={**OCTET, "Content-Range": "0-2"}), 202),
        ("upload-get", lambda: client.get(f"{loc}{'&' if '?' in loc else '?'}{q}"), 204),
        ("upload-put", lambda: client.put(with_query(loc, digest=sha256_digest(blob), ns="docker.io"),
                                          data=blob[3:], headers={**OCTET, "Content-Range": "3-6"}), 201),
        ("monolithic", lambda: client.post(f"/v2/{NAME}/blobs/uploads/?digest={sha256_digest(b'm')}&{q}",
                                           data=b"m", headers=OCTET), 201),
        ("mount", lambda: client.post(f"/v2/conformance/ns-mount/blobs/uploads/?mount={image['config']}"
                                      f"&from={NAME}&{q}"), 201),
        ("manifest-put", lambda: client.put(f"/v2/{NAME}/manifests/other?{q}", data=image["body"],
                                            headers={"Content-Type": OCI_MANIFEST}), 201),
        ("manifest-delete-tag", lambda: client.delete(f"/v2/{NAME}/manifests/other?{q}"), 202),
        ("blob-delete", lambda: client.delete(f"/v2/{NAME}/blobs/{sha256_digest(b'm')}?{q}"), 202),
        ("manifest-delete", lambda: client.delete(f"/v2/{NAME}/manifests/{image['manifest']}?{q}"), 202),
    ]


def test_ns_and_unknown_query_parameters_are_tolerated_everywhere(client, populated):
    failures = []
    for label, call, expected in ns_requests(client, populated):
        resp = call()
        if resp.status_code != expected:
            failures.append((label, expected, resp.status_code, resp.get_data()[:200]))
    assert not failures, failures


# ------------------------------------------------------------------ routes and methods

@pytest.mark.parametrize("path", [
    f"/v2/{NAME}", f"/v2/{NAME}/", f"/v2/{NAME}/unknown/thing", f"/v2/{NAME}/blobs",
    f"/v2/{NAME}/tags", f"/v2/{NAME}/tags/lister", "/v2/_unknown", f"/v2/{NAME}/manifests",
])
def test_unknown_route_under_v2_is_404_with_envelope(client, path):
    assert_error(client.get(path), 404)


@pytest.mark.parametrize("method,path", [
    ("post", f"/v2/{NAME}/manifests/latest"),
    ("patch", f"/v2/{NAME}/manifests/latest"),
    ("post", f"/v2/{NAME}/blobs/{DUMMY_DIGEST}"),
    ("put", f"/v2/{NAME}/blobs/{DUMMY_DIGEST}"),
    ("patch", f"/v2/{NAME}/blobs/{DUMMY_DIGEST}"),
    ("put", f"/v2/{NAME}/tags/list"),
    ("delete", f"/v2/{NAME}/tags/list"),
    ("post", f"/v2/{NAME}/referrers/{DUMMY_DIGEST}"),
    ("delete", "/v2/"),
    ("post", "/v2/_catalog"),
])
def test_unsupported_method_is_405_with_envelope(client, method, path):
    resp = getattr(client, method)(path)
    assert_error(resp, 405)
    assert resp.headers.get("Allow")


# ------------------------------------------------------------------ names containing route words

KEYWORD_NAMES = ["a/blobs/b", "x/manifests", "blobs/uploads", "tags/list", "a/referrers",
                 "v2", "uploads/blobs/manifests/tags", "a/blobs/uploads"]


@pytest.mark.parametrize("name", KEYWORD_NAMES)
def test_names_with_route_keywords_route_correctly(client, name):
    image = make_image(client, name, layers=[b"kw-" + name.encode()], tag="latest")
    chunked = push_blob_chunked(client, name, [b"chunk-one-", b"chunk-two-"], final=b"end")
    assert client.get(f"/v2/{name}/manifests/latest").get_data() == image["body"]
    assert client.get(f"/v2/{name}/manifests/{image['manifest']}").status_code == 200
    assert client.get(f"/v2/{name}/blobs/{chunked}").get_data() == b"chunk-one-chunk-two-end"
    resp = client.get(f"/v2/{name}/tags/list")
    assert resp.status_code == 200 and body_json(resp) == {"name": name, "tags": ["latest"]}
    assert client.get(f"/v2/{name}/referrers/{image['manifest']}").status_code == 200
    assert name in body_json(client.get("/v2/_catalog"))["repositories"]
    parts = name.split("/")
    for parent in ("/".join(parts[:i]) for i in range(1, len(parts))):
        # every prefix is a different repository and sees nothing
        assert blob_status(client, parent, chunked) == 404, parent
        assert client.get(f"/v2/{parent}/manifests/latest").status_code == 404, parent
    assert client.delete(f"/v2/{name}/manifests/{image['manifest']}").status_code == 202
    assert client.get(f"/v2/{name}/manifests/latest").status_code == 404
