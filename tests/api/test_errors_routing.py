"""Bad input, names and routes: invalid repository names on every endpoint, unknown query parameters
(``ns=docker.io``) tolerated everywhere, unknown routes (404), unsupported methods (405), and repository names
containing route keywords (``a/blobs/b``, ``x/manifests``).

Every rejection is an OCI error envelope (01_pull_test.go "400 response body should contain
OCI-conforming JSON message": the envelope shape and a code from setup.go's errorCodes list).
"""
from __future__ import annotations

import pytest

from tests.support.oci_client import (
    DUMMY_DIGEST, OCI_MANIFEST, OCTET, assert_error, blob_status, body_json, make_image, open_session,
    push_blob_chunked, sha256_digest, tag_list, with_query,
)
from tests.support.errors_helpers import NAME


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
