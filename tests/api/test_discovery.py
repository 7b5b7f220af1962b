"""Content discovery at the protocol level: tags, catalog, referrers.

Mirrors conformance/03_discovery_test.go of distribution-spec v1.1.1 (stored
copy b5f09eb, with setup.go b5f09eb):

Setup
  - "Populate registry with test blob", "Populate registry with test layer",
    "Populate registry with test tags" (test0..test3 -> manifests[2]),
    "Populate registry with test tags (no push)" (environment-driven; not applicable),
  - "References setup": the empty JSON blob, refsManifestA{Config,Layer}Artifact and
    refsIndexArtifact pushed *before* their subject manifests[4], then manifests[4] as
    tag tagtest0, refsManifestB{Config,Layer}Artifact after it, and
    refsManifestCLayerArtifact whose subject manifests[3] is never pushed; every push
    of a manifest with a subject must answer OCI-Subject: <subject digest>.
Test content discovery endpoints (listing tags)
  - "GET request to list tags should yield 200 response"
  - "GET number of tags should be limitable by `n` query parameter"
  - "GET start of tag is set by `last` query parameter"
Test content discovery endpoints (listing references)
  - "GET request to nonexistent blob should result in empty 200 response"
  - "GET request to existing blob should yield 200" (5 descriptors, 1 annotation each)
  - "GET request to existing blob with filter should yield 200" (2 with OCI-Filters-Applied)
  - "GET request to missing manifest should yield 200" (the dangling subject: 1 descriptor)
Teardown
  - "Delete created manifest & associated tags", "Delete config blob created in tests",
    "Delete layer blob created in setup", "References teardown"

Beyond the suite: tag order, Link headers, n=0, huge/negative/non-integer n,
unknown repositories, the _catalog endpoint, and referrer descriptor contents.
"""
from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from tests.support.oci_client import (
    CONFORMANCE_LAYER, DUMMY_DIGEST, EMPTY_BLOB, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, assert_error,
    body_json, conformance_manifest, descriptor, image_index, image_manifest, link_next, make_image,
    push_blob, push_manifest, put_manifest_ok, query_of, random_config, referrers, sha256_digest,
    tag_list,
)

NAME = "conformance/discovery-test"
ART_A = "application/vnd.nhl.peanut.butter.bagel"
ART_B = "application/vnd.nba.strawberry.jam.croissant"
ART_INDEX = "application/vnd.food.stand"
KEY = "org.opencontainers.conformance.test"
REF_A = b"NHL Peanut Butter on my NHL bagel"
REF_B = b"NBA Strawberry Jam on my NBA croissant"
ALL_TAGS = ["tagtest0", "test0", "test1", "test2", "test3"]


def push_referrer(client, body: bytes, media_type: str, subjects: dict) -> str:
    resp = push_manifest(client, NAME, sha256_digest(body), body, media_type)
    assert resp.status_code == 201, resp.get_data()
    subjects[sha256_digest(body)] = resp.headers.get("OCI-Subject")
    return sha256_digest(body)


@pytest.fixture
def disco(client):
    """The suite's discovery Setup and References setup, in the suite's order."""
    configs = {i: random_config() for i in (2, 3, 4)}
    manifests = {i: conformance_manifest(c) for i, c in configs.items()}
    push_blob(client, NAME, configs[2])
    push_blob(client, NAME, CONFORMANCE_LAYER)
    for i in range(4):
        put_manifest_ok(client, NAME, f"test{i}", manifests[2])

    subject4, subject3 = (descriptor(OCI_MANIFEST, manifests[i]) for i in (4, 3))
    empty = descriptor(OCI_EMPTY, EMPTY_BLOB)
    a_config = image_manifest(descriptor(ART_A, REF_A), [empty], subject=subject4,
                              annotations={KEY: "test config a"})
    b_config = image_manifest(descriptor(ART_B, REF_B), [empty], subject=subject4,
                              annotations={KEY: "test config b"})
    a_layer = image_manifest(empty, [descriptor(ART_A, REF_A)], artifact_type=ART_A, subject=subject4,
                             annotations={KEY: "test layer a"})
    b_layer = image_manifest(empty, [descriptor(ART_B, REF_B)], artifact_type=ART_B, subject=subject4,
                             annotations={KEY: "test layer b"})
    c_layer = image_manifest(empty, [descriptor(ART_B, REF_B)], artifact_type=ART_B, subject=subject3)
    index = image_index([descriptor(OCI_MANIFEST, a_config), descriptor(OCI_MANIFEST, a_layer)],
                        subject=subject4, artifact_type=ART_INDEX, annotations={KEY: "test index"})

    subjects: dict[str, str | None] = {}
    push_blob(client, NAME, EMPTY_BLOB)
    push_blob(client, NAME, REF_A)
    push_referrer(client, a_config, OCI_MANIFEST, subjects)
    push_referrer(client, a_layer, OCI_MANIFEST, subjects)
    push_referrer(client, index, OCI_INDEX, subjects)
    push_blob(client, NAME, configs[4])
    push_blob(client, NAME, CONFORMANCE_LAYER)
    put_manifest_ok(client, NAME, "tagtest0", manifests[4])
    push_blob(client, NAME, REF_B)
    for body in (b_config, b_layer, c_layer):
        push_referrer(client, body, OCI_MANIFEST, subjects)

    bodies = {"a_config": a_config, "a_layer": a_layer, "index": index, "b_config": b_config,
              "b_layer": b_layer, "c_layer": c_layer}
    return SimpleNamespace(
        configs=configs, manifests=manifests, bodies=bodies, subjects=subjects,
        digest={k: sha256_digest(v) for k, v in bodies.items()},
        subject4=sha256_digest(manifests[4]), subject3=sha256_digest(manifests[3]),
        annotations={sha256_digest(v): k for k, v in {
            "test config a": a_config, "test config b": b_config, "test layer a": a_layer,
            "test layer b": b_layer, "test index": index}.items()})


# ------------------------------------------------------------------ setup

def test_references_setup_answers_oci_subject_for_every_referrer(disco):
    for key in ("a_config", "a_layer", "index", "b_config", "b_layer"):
        assert disco.subjects[disco.digest[key]] == disco.subject4, key
    assert disco.subjects[disco.digest["c_layer"]] == disco.subject3


# ------------------------------------------------------------------ tags

def test_list_tags_yields_200_with_name_and_sorted_tags(client, disco):
    resp = client.get(f"/v2/{NAME}/tags/list")
    assert resp.status_code == 200
    doc = body_json(resp)
    assert doc["name"] == NAME
    assert doc["tags"] == ALL_TAGS


def test_number_of_tags_is_limited_by_n_with_link_to_next_page(client, disco):
    n = len(ALL_TAGS) // 2
    resp = client.get(f"/v2/{NAME}/tags/list?n={n}")
    assert resp.status_code == 200
    assert body_json(resp)["tags"] == ALL_TAGS[:n]
    link = link_next(resp)
    assert link is not None, "more tags remain: a Link header is expected"
    assert urlsplit(link).path == f"/v2/{NAME}/tags/list"
    assert query_of(link) == {"n": str(n), "last": ALL_TAGS[n - 1]}


def test_last_sets_an_exclusive_start_of_the_tag_list(client, disco):
    n = len(ALL_TAGS) // 2
    first = tag_list(client, NAME, n=n)
    assert tag_list(client, NAME, n=n, last=first[-1]) == ALL_TAGS[n:2 * n]


@pytest.mark.parametrize("last,expected", [
    ("test1", ["test2", "test3"]),
    ("test1a", ["test2", "test3"]),      # need not exist
    ("a", ALL_TAGS),                     # before everything
    ("zzz", []),                         # after everything
])
def test_last_without_n_returns_every_later_tag(client, disco, last, expected):
    assert tag_list(client, NAME, last=last) == expected


def test_following_link_headers_pages_through_all_tags_once(client, disco):
    url, seen, pages = f"/v2/{NAME}/tags/list?n=2", [], 0
    while url:
        resp = client.get(url)
        assert resp.status_code == 200
        page = body_json(resp)["tags"]
        assert len(page) <= 2
        seen += page
        pages += 1
        url = link_next(resp)
        if len(seen) < len(ALL_TAGS):
            assert url, "a Link header is required while tags remain"
        assert pages <= len(ALL_TAGS) + 1
    assert seen == ALL_TAGS


def test_n_zero_returns_empty_list_without_link(client, disco):
    resp = client.get(f"/v2/{NAME}/tags/list?n=0")
    assert resp.status_code == 200
    assert body_json(resp) == {"name": NAME, "tags": []}
    assert "Link" not in resp.headers


@pytest.mark.parametrize("n", [str(10**9), "9" * 25])
def test_huge_n_is_clamped_not_rejected(client, disco, n):
    resp = client.get(f"/v2/{NAME}/tags/list?n={n}")
    assert resp.status_code == 200
    assert body_json(resp)["tags"] == ALL_TAGS
    assert "Link" not in resp.headers


# "%C2%B2" is "²" (superscript two) and "%D9%A3" is an Arabic-Indic three: Unicode
# digits that str.isdigit() accepts but that are not the ASCII integer the spec means.
@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "1e3", "0x10", "+3", "%20 3", "%C2%B2"])
def test_negative_or_non_integer_n_is_400(client, disco, n):
    assert_error(client.get(f"/v2/{NAME}/tags/list?n={n}"), 400)


def test_tags_are_in_byte_order(client):
    tags = ["b", "B", "a", "_x", "9", "A-", "a.b", "a_b", "a-b", "Z", "z", "a0", "aa"]
    image = make_image(client, NAME, tag=None)
    for tag in tags:
        put_manifest_ok(client, NAME, tag, image["body"])
    assert tag_list(client, NAME) == sorted(tags)
    page1 = tag_list(client, NAME, n=5)
    assert page1 == sorted(tags)[:5]
    assert tag_list(client, NAME, n=5, last=page1[-1]) == sorted(tags)[5:10]


def test_tags_of_unknown_repository_is_404_name_unknown(client):
    assert_error(client.get("/v2/never/pushed/tags/list"), 404, "NAME_UNKNOWN")


# ------------------------------------------------------------------ catalog

REPOS = ["c/a", "c-a", "c.a", "c_a", "c0", "c/b/c", "d"]


@pytest.fixture
def repos(client):
    for repo in REPOS:
        make_image(client, repo)
    return sorted(REPOS)


def test_catalog_lists_repositories_in_byte_order(client, repos):
    resp = client.get("/v2/_catalog")
    assert resp.status_code == 200
    assert body_json(resp)["repositories"] == repos


def test_catalog_paginates_with_n_last_and_link(client, repos):
    resp = client.get("/v2/_catalog?n=3")
    assert body_json(resp)["repositories"] == repos[:3]
    link = link_next(resp)
    assert link and urlsplit(link).path == "/v2/_catalog"
    assert query_of(link) == {"n": "3", "last": repos[2]}
    url, seen = "/v2/_catalog?n=3", []
    while url:
        resp = client.get(url)
        seen += body_json(resp)["repositories"]
        url = link_next(resp)
        assert len(seen) <= len(repos)
    assert seen == repos
    resp = client.get(f"/v2/_catalog?last={repos[3]}")
    assert body_json(resp)["repositories"] == repos[4:]


def test_catalog_n_zero_and_huge_n(client, repos):
    resp = client.get("/v2/_catalog?n=0")
    assert resp.status_code == 200
    assert body_json(resp) == {"repositories": []} and "Link" not in resp.headers
    resp = client.get(f"/v2/_catalog?n={10**9}")
    assert resp.status_code == 200 and body_json(resp)["repositories"] == repos


@pytest.mark.parametrize("n", ["-5", "ten", "%C2%B2"])
def test_catalog_rejects_negative_or_non_integer_n(client, repos, n):
    assert_error(client.get(f"/v2/_catalog?n={n}"), 400)


def test_catalog_of_empty_registry_is_empty(client):
    resp = client.get("/v2/_catalog")
    assert resp.status_code == 200
    assert body_json(resp) == {"repositories": []}


# ------------------------------------------------------------------ referrers

def assert_index_response(resp) -> list[dict]:
    assert resp.status_code == 200, resp.get_data()
    assert resp.headers.get("Content-Type") == OCI_INDEX
    doc = body_json(resp)
    assert doc.get("schemaVersion") == 2 and doc.get("mediaType") == OCI_INDEX
    assert isinstance(doc["manifests"], list)
    return doc["manifests"]


def test_referrers_of_nonexistent_digest_is_empty_200(client, disco):
    assert assert_index_response(client.get(f"/v2/{NAME}/referrers/{DUMMY_DIGEST}")) == []


def test_referrers_of_subject_lists_all_five_with_their_annotations(client, disco):
    found = assert_index_response(client.get(f"/v2/{NAME}/referrers/{disco.subject4}"))
    assert len(found) == 5
    assert len({d["digest"] for d in found}) == 5
    for desc in found:
        assert desc["annotations"] == {KEY: disco.annotations[desc["digest"]]}


EXPECTED_DESCRIPTORS = {  # key -> (mediaType, artifactType)
    "a_config": (OCI_MANIFEST, ART_A),   # falls back to config.mediaType
    "b_config": (OCI_MANIFEST, ART_B),
    "a_layer": (OCI_MANIFEST, ART_A),    # manifest artifactType
    "b_layer": (OCI_MANIFEST, ART_B),
    "index": (OCI_INDEX, ART_INDEX),
}


def test_referrer_descriptors_carry_media_type_size_and_artifact_type(client, disco):
    by_digest = {d["digest"]: d for d in referrers(client, NAME, disco.subject4)}
    for key, (media_type, artifact_type) in EXPECTED_DESCRIPTORS.items():
        desc = by_digest[disco.digest[key]]
        assert desc["mediaType"] == media_type, key
        assert desc["artifactType"] == artifact_type, key
        assert desc["size"] == len(disco.bodies[key]), key


@pytest.mark.parametrize("artifact_type,keys", [
    (ART_A, {"a_config", "a_layer"}),
    (ART_B, {"b_config", "b_layer"}),
    (ART_INDEX, {"index"}),
    ("application/vnd.nobody.uses.this", set()),
])
def test_referrers_filtered_by_artifact_type(client, disco, artifact_type, keys):
    resp = client.get(f"/v2/{NAME}/referrers/{disco.subject4}?artifactType={artifact_type}")
    found = assert_index_response(resp)
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType"
    assert {d["digest"] for d in found} == {disco.digest[k] for k in keys}
    for desc in found:
        assert desc["artifactType"] == artifact_type
        assert desc["annotations"] == {KEY: disco.annotations[desc["digest"]]}


def test_unfiltered_referrers_have_no_filters_applied_header(client, disco):
    resp = client.get(f"/v2/{NAME}/referrers/{disco.subject4}")
    assert "OCI-Filters-Applied" not in resp.headers


def test_referrers_of_missing_manifest_list_the_dangling_referrer(client, disco):
    found = assert_index_response(client.get(f"/v2/{NAME}/referrers/{disco.subject3}"))
    assert [d["digest"] for d in found] == [disco.digest["c_layer"]]
    assert found[0]["artifactType"] == ART_B


def test_index_referrer_without_artifact_type_omits_it(client, disco):
    bare = image_index([], subject=descriptor(OCI_MANIFEST, disco.manifests[4]))
    assert push_manifest(client, NAME, sha256_digest(bare), bare, OCI_INDEX).status_code == 201
    desc = {d["digest"]: d for d in referrers(client, NAME, disco.subject4)}[sha256_digest(bare)]
    assert "artifactType" not in desc
    assert desc["mediaType"] == OCI_INDEX and desc["size"] == len(bare)
    assert not desc.get("annotations")


def test_deleted_referrer_disappears_from_the_list(client, disco):
    assert client.delete(f"/v2/{NAME}/manifests/{disco.digest['b_layer']}").status_code == 202
    digests = {d["digest"] for d in referrers(client, NAME, disco.subject4)}
    assert disco.digest["b_layer"] not in digests and len(digests) == 4


def test_referrers_are_scoped_to_their_repository(client, disco):
    other = "conformance/other-repo"
    push_blob(client, other, EMPTY_BLOB)
    push_blob(client, other, REF_B)
    body = disco.bodies["b_layer"]
    assert push_manifest(client, other, sha256_digest(body), body).status_code == 201
    assert [d["digest"] for d in referrers(client, other, disco.subject4)] == [sha256_digest(body)]
    assert len(referrers(client, NAME, disco.subject4)) == 5


def test_referrers_of_unknown_repository_is_an_empty_index(client):
    """The spec allows 404 NAME_UNKNOWN too; this registry always answers 200 for a well-formed digest (docs/api.md)."""
    assert assert_index_response(client.get(f"/v2/never/pushed/referrers/{DUMMY_DIGEST}")) == []


@pytest.mark.parametrize("digest", ["sha256:totallywrong", "sha256:" + "a" * 63, "md5:" + "a" * 32, "nodigest"])
def test_referrers_with_malformed_digest_is_400(client, disco, digest):
    assert_error(client.get(f"/v2/{NAME}/referrers/{digest}"), 400, "DIGEST_INVALID")


# ------------------------------------------------------------------ teardown

def test_teardown_deletes_references_manifests_and_blobs(client, disco):
    refs = [disco.digest[k] for k in ("index", "a_config", "a_layer", "b_config", "b_layer", "c_layer")]
    refs += [sha256_digest(disco.manifests[2]), disco.subject4]
    for ref in refs:
        assert client.delete(f"/v2/{NAME}/manifests/{ref}").status_code == 202, ref
    for data in (disco.configs[2], disco.configs[4], CONFORMANCE_LAYER, REF_A, REF_B, EMPTY_BLOB):
        assert client.delete(f"/v2/{NAME}/blobs/{sha256_digest(data)}").status_code == 202
    assert assert_index_response(client.get(f"/v2/{NAME}/referrers/{disco.subject4}")) == []
    for tag in ALL_TAGS:
        assert client.get(f"/v2/{NAME}/manifests/{tag}").status_code == 404
