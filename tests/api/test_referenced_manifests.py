"""Manifests an index lists are marked in listings and kept from deletes (issue #10, item 6).

The documented clean-up (`_regext/manifests?tagged=false`, then `DELETE` by digest) used to list the
platform images of a tagged multi-arch index as plain untagged manifests and accept their deletion,
after which pulling the index for that platform failed. Now every entry says what references it
(`referencedBy`), and a `DELETE` of a manifest that an index of the repository lists is refused with
`409 DENIED` unless the client adds `?force=true`; deleting the index first needs no force.
"""
from __future__ import annotations

import pytest

from registry_ext.oci.digest import parse_digest
from registry_ext.services.check import check
from registry_ext.services.reindex import reindex
from tests.support.oci_client import (
    OCI_INDEX, OCI_MANIFEST, assert_error, go_json, image_manifest, make_image, push_manifest,
    put_manifest_ok, sha256_digest,
)

NAME = "multi/app"


def child(image: dict, os_name: str, arch: str) -> dict:
    return {"mediaType": OCI_MANIFEST, "digest": image["manifest"], "size": image["size"],
            "platform": {"os": os_name, "architecture": arch}}


def push_index(client, children: list[dict], tag: str | None) -> str:
    body = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    return put_manifest_ok(client, NAME, tag or sha256_digest(body), body, OCI_INDEX)


@pytest.fixture
def multiarch(client):
    amd64 = make_image(client, NAME, tag=None, layers=(b"amd64",))
    arm64 = make_image(client, NAME, tag=None, layers=(b"arm64",))
    index = push_index(client, [child(amd64, "linux", "amd64"), child(arm64, "linux", "arm64")], "1.0")
    return {"amd64": amd64["manifest"], "arm64": arm64["manifest"], "index": index}


def untagged(client) -> dict[str, dict]:
    listing = client.get(f"/v2/{NAME}/_regext/manifests?tagged=false").json["manifests"]
    return {m["digest"]: m["referencedBy"] for m in listing}


def test_the_untagged_listing_marks_the_children_of_a_tagged_index(client, multiarch):
    assert untagged(client) == {multiarch["amd64"]: {"indexes": 1, "referrers": 0},
                                multiarch["arm64"]: {"indexes": 1, "referrers": 0}}
    tagged = client.get(f"/v2/{NAME}/_regext/manifests?tagged=true").json["manifests"]
    assert [(m["digest"], m["referencedBy"]) for m in tagged] == [
        (multiarch["index"], {"indexes": 0, "referrers": 0})]


def test_deleting_a_child_of_a_kept_index_is_refused_and_the_pull_still_works(client, multiarch):
    resp = client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}")
    doc = assert_error(resp, 409, "DENIED")
    assert doc["errors"][0]["detail"] == {"digest": multiarch["arm64"], "indexes": [multiarch["index"]],
                                          "count": 1}
    assert "?force=true" in doc["errors"][0]["message"]
    assert doc["errors"][0]["message"].startswith(f"manifest is listed by index {multiarch['index']} of this")
    # what an arm64 client does: the tagged index, then its arm64 entry by digest
    index = client.get(f"/v2/{NAME}/manifests/1.0", headers={"Accept": OCI_INDEX}).json
    arm64 = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    assert client.get(f"/v2/{NAME}/manifests/{arm64}").status_code == 200


def test_deleting_the_index_first_frees_its_children(client, multiarch):
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['index']}").status_code == 202
    assert untagged(client) == {multiarch["amd64"]: {"indexes": 0, "referrers": 0},
                                multiarch["arm64"]: {"indexes": 0, "referrers": 0}}
    for arch in ("amd64", "arm64"):
        assert client.delete(f"/v2/{NAME}/manifests/{multiarch[arch]}").status_code == 202
    assert client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"] == []


def test_force_deletes_a_child_and_the_index_keeps_listing_it(client, app, multiarch):
    body = client.get(f"/v2/{NAME}/manifests/{multiarch['arm64']}").get_data()
    resp = client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}?force=true")
    assert resp.status_code == 202
    assert client.get(f"/v2/{NAME}/manifests/{multiarch['arm64']}").status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/1.0").status_code == 200  # a sparse index now
    assert untagged(client) == {multiarch["amd64"]: {"indexes": 1, "referrers": 0}}
    reg = app.extensions["registry"]
    assert check(reg.storage, reg.index).findings == []
    # pushed again, the child is listed by the index again
    put_manifest_ok(client, NAME, multiarch["arm64"], body)
    assert untagged(client)[multiarch["arm64"]] == {"indexes": 1, "referrers": 0}
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}").status_code == 409


@pytest.mark.parametrize("value", ["yes", "1", "TRUE"])
def test_force_must_be_true_or_false(client, multiarch, value):
    doc = assert_error(client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}?force={value}"), 400,
                       "UNSUPPORTED")
    assert doc["errors"][0]["detail"] == {"parameter": "force"}
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['amd64']}?force=false").status_code == 409


def test_nested_indexes_and_two_parents(client, multiarch):
    image = {"manifest": multiarch["index"], "size": len(client.get(f"/v2/{NAME}/manifests/1.0").get_data())}
    outer = push_index(client, [{"mediaType": OCI_INDEX, "digest": image["manifest"], "size": image["size"]}],
                       "outer")
    other = push_index(client, [child({"manifest": multiarch["amd64"], "size": client.head(
        f"/v2/{NAME}/manifests/{multiarch['amd64']}").content_length}, "linux", "amd64")], None)
    listing = {m["digest"]: m["referencedBy"]["indexes"]
               for m in client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"]}
    assert listing == {multiarch["amd64"]: 2, multiarch["arm64"]: 1, multiarch["index"]: 1, outer: 0, other: 0}
    doc = assert_error(client.delete(f"/v2/{NAME}/manifests/{multiarch['amd64']}"), 409, "DENIED")
    assert doc["errors"][0]["detail"]["indexes"] == sorted([multiarch["index"], other])
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['index']}").status_code == 409  # outer lists it
    for digest in (outer, multiarch["index"], other, multiarch["amd64"], multiarch["arm64"]):
        assert client.delete(f"/v2/{NAME}/manifests/{digest}").status_code == 202, digest


def test_a_subject_counts_its_referrers_and_may_be_deleted(client):
    subject = make_image(client, NAME, tag="app")
    sig = image_manifest({"mediaType": "application/vnd.example.sig", "digest": subject["config"],
                          "size": len(client.get(f"/v2/{NAME}/blobs/{subject['config']}").get_data())}, [],
                         subject={"mediaType": OCI_MANIFEST, "digest": subject["manifest"],
                                  "size": subject["size"]})
    put_manifest_ok(client, NAME, sha256_digest(sig), sig)
    listing = {m["digest"]: m["referencedBy"] for m in client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"]}
    assert listing[subject["manifest"]] == {"indexes": 0, "referrers": 1}
    # the spec lets referrers outlive their subject: no refusal
    assert client.delete(f"/v2/{NAME}/manifests/{subject['manifest']}").status_code == 202


def test_the_edges_are_rebuilt_by_reindex_and_checked(client, app, multiarch, redis_client, settings):
    reg = app.extensions["registry"]
    prefix = settings.redis.key_prefix
    redis_client.delete(*redis_client.keys(f"{prefix}:repo:*"))
    reindex(reg.storage, reg.index)
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}").status_code == 409
    assert check(reg.storage, reg.index).findings == []
    redis_client.srem(f"{prefix}:repo:{{{NAME}}}:parents:{multiarch['arm64']}", multiarch["index"])
    assert [(f.kind, f.subject) for f in check(reg.storage, reg.index, repair=True).findings] == [
        ("index-drift", NAME)]
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}").status_code == 409
    assert check(reg.storage, reg.index).findings == []


def test_a_stale_edge_to_a_deleted_index_does_not_block_a_delete(client, app, multiarch, redis_client, settings):
    """The refusal confirms each parent on storage: an index the index still remembers but storage
    no longer has (Redis behind) blocks nothing."""
    reg = app.extensions["registry"]
    reg.storage.repos.delete_manifest(NAME, parse_digest(multiarch["index"]))  # as a delete Redis then lost
    assert client.delete(f"/v2/{NAME}/manifests/{multiarch['arm64']}").status_code == 202


def test_an_index_push_racing_the_delete_of_its_child_is_refused(client, app, multiarch):
    """The children are checked again under the repository lock, where deletes happen."""
    body = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": multiarch["amd64"], "size": client.head(
            f"/v2/{NAME}/manifests/{multiarch['amd64']}").content_length}]})
    reg = app.extensions["registry"]
    original = reg.manifests._check_references

    def check_then_lose_the_child(name, manifest):
        original(name, manifest)  # the child is there when checked...
        assert client.delete(f"/v2/{NAME}/manifests/{multiarch['index']}").status_code == 202
        assert client.delete(f"/v2/{NAME}/manifests/{multiarch['amd64']}").status_code == 202  # ...then gone

    reg.manifests._check_references = check_then_lose_the_child
    try:
        resp = push_manifest(client, NAME, "racing", body, OCI_INDEX)
    finally:
        reg.manifests._check_references = original
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get(f"/v2/{NAME}/manifests/racing").status_code == 404
