"""`PUT /manifests/<digest>?tag=..` and sha512 manifests end to end (issue #10, item 19).

distribution-spec main, "Pushing Manifests": a push by digest may carry `tag` query parameters; the
manifest is stored once, each tag points at it, and the response has one `OCI-Tag` header per tag
applied. The conformance suite's sha512 data set pushes that way (a tag push is always digested with
sha256), so sha512 is checked here for every path: blobs (monolithic, chunked, mount, pull, range),
manifests by digest, tags, referrers, listings, history and delete.
"""
from __future__ import annotations

import hashlib

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from tests.support.oci_client import (
    OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, assert_error, go_json, location, make_image,
    push_manifest, random_config, tag_list, with_query,
)

NAME = "tagparams/app"


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def put_by_digest(client, body: bytes, digest: str, *tags: str, media_type: str = OCI_MANIFEST):
    query = "&".join(f"tag={t}" for t in tags)
    return client.put(f"/v2/{NAME}/manifests/{digest}" + (f"?{query}" if query else ""), data=body,
                      headers={"Content-Type": media_type})


def test_tags_pushed_with_a_manifest_by_digest(client):
    image = make_image(client, NAME, tag=None)
    resp = put_by_digest(client, image["body"], image["manifest"], "1.2.3", "1.2", "latest")
    assert resp.status_code == 201
    assert resp.headers.getlist("OCI-Tag") == ["1.2.3", "1.2", "latest"]
    assert resp.headers["Docker-Content-Digest"] == image["manifest"]
    for tag in ("1.2.3", "1.2", "latest"):
        got = client.get(f"/v2/{NAME}/manifests/{tag}")
        assert got.status_code == 200 and got.get_data() == image["body"]
        assert client.get(f"/v2/{NAME}/_oci/tag-history/{tag}").json["manifests"][0]["digest"] == image["manifest"]
    assert tag_list(client, NAME) == ["1.2", "1.2.3", "latest"]
    listed = client.get(f"/v2/{NAME}/_regext/digests/{image['manifest']}/tags").json["tags"]
    assert sorted(listed) == ["1.2", "1.2.3", "latest"]


def test_tag_parameters_move_tags_and_duplicates_count_once(client):
    first = make_image(client, NAME, tag="stable")
    second = make_image(client, NAME, tag=None)
    resp = put_by_digest(client, second["body"], second["manifest"], "stable", "new", "stable")
    assert resp.status_code == 201 and resp.headers.getlist("OCI-Tag") == ["stable", "new"]
    assert client.get(f"/v2/{NAME}/manifests/stable").headers["Docker-Content-Digest"] == second["manifest"]
    assert client.get(f"/v2/{NAME}/_regext/digests/{first['manifest']}/tags").json["tags"] == []
    events = client.get(f"/v2/{NAME}/_oci/tag-history/stable").json["manifests"]
    assert [e["digest"] for e in events] == [second["manifest"], first["manifest"]]
    # pushed again with the same tags: accepted, nothing moves
    again = put_by_digest(client, second["body"], second["manifest"], "stable")
    assert again.status_code == 201 and again.headers.getlist("OCI-Tag") == ["stable"]
    assert len(client.get(f"/v2/{NAME}/_oci/tag-history/stable").json["manifests"]) == 2


def test_a_push_without_tag_parameters_has_no_oci_tag_header(client):
    image = make_image(client, NAME, tag=None)
    resp = put_by_digest(client, image["body"], image["manifest"])
    assert resp.status_code == 201 and "OCI-Tag" not in resp.headers
    assert "OCI-Tag" not in push_manifest(client, NAME, "plain", image["body"]).headers


@pytest.mark.parametrize("bad", [".hidden", "a" * 129, "with/slash", "", "sha256:abc"])
def test_an_invalid_tag_parameter_is_400_and_nothing_is_stored(client, bad):
    image = make_image(client, NAME, tag=None, layers=(b"other",))
    body = image["body"].replace(b'"schemaVersion"', b'"annotations": {"x": "y"}, "schemaVersion"')
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    resp = client.put(f"/v2/{NAME}/manifests/{digest}", query_string=[("tag", "good"), ("tag", bad)], data=body,
                      headers={"Content-Type": OCI_MANIFEST})
    doc = assert_error(resp, 400, "MANIFEST_INVALID")
    assert doc["errors"][0]["message"] == "invalid tag parameter"
    assert doc["errors"][0]["detail"] == {"parameter": "tag", "tag": bad[:200]}
    assert client.head(f"/v2/{NAME}/manifests/{digest}").status_code == 404
    assert "good" not in tag_list(client, NAME)


def test_tag_parameters_need_a_push_by_digest(client):
    image = make_image(client, NAME, tag=None)
    resp = client.put(f"/v2/{NAME}/manifests/latest?tag=other", data=image["body"],
                      headers={"Content-Type": OCI_MANIFEST})
    doc = assert_error(resp, 400, "UNSUPPORTED")
    assert doc["errors"][0]["detail"] == {"parameter": "tag"}
    assert tag_list(client, NAME) == []


def test_more_tag_parameters_than_the_limit_is_414(settings):
    client = create_app(replace(settings, "limits", push_tags_max=3)).test_client()
    image = make_image(client, NAME, tag=None)
    assert put_by_digest(client, image["body"], image["manifest"], "a", "b", "c").status_code == 201
    resp = put_by_digest(client, image["body"], image["manifest"], "a", "b", "c", "d")
    doc = assert_error(resp, 414, "UNSUPPORTED")
    assert doc["errors"][0]["detail"] == {"parameter": "tag", "limit": 3}
    assert tag_list(client, NAME) == ["a", "b", "c"]


# ---------------------------------------------------------------- sha512 end to end

def push_blob_sha512(client, data: bytes, chunked: bool = False) -> str:
    digest = sha512(data)
    if not chunked:
        resp = client.post(f"/v2/{NAME}/blobs/uploads/?digest={digest}", data=data,
                           headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 201 and resp.headers["Docker-Content-Digest"] == digest
        return digest
    start = client.post(f"/v2/{NAME}/blobs/uploads/?digest-algorithm=sha512", headers={"Content-Length": "0"})
    assert start.status_code == 202
    half = len(data) // 2
    patch = client.patch(location(start), data=data[:half], headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"0-{half - 1}"})
    assert patch.status_code == 202
    done = client.put(with_query(location(patch), digest=digest), data=data[half:], headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"{half}-{len(data) - 1}"})
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == digest
    return digest


def sha512_descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha512(data), "size": len(data), **extra}


def test_sha512_blobs_upload_mount_and_pull(client):
    data = b"a sha512 layer " * 100
    digest = push_blob_sha512(client, data, chunked=True)
    assert push_blob_sha512(client, b"monolithic") == sha512(b"monolithic")
    got = client.get(f"/v2/{NAME}/blobs/{digest}")
    assert got.status_code == 200 and got.get_data() == data and got.headers["Docker-Content-Digest"] == digest
    ranged = client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": "bytes=2-9"})
    assert ranged.status_code == 206 and ranged.get_data() == data[2:10]
    mounted = client.post(f"/v2/other/app/blobs/uploads/?mount={digest}&from={NAME}")
    assert mounted.status_code == 201 and mounted.headers["Location"] == f"/v2/other/app/blobs/{digest}"
    assert client.head(f"/v2/other/app/blobs/{digest}").status_code == 200


def test_sha512_manifests_with_tags_referrers_listings_and_delete(client):
    config, layer = random_config(), b"sha512 layer"
    push_blob_sha512(client, config)
    push_blob_sha512(client, layer)
    body = go_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": sha512_descriptor(OCI_CONFIG, config),
                    "layers": [sha512_descriptor(OCI_LAYER_GZIP, layer)]})
    digest = sha512(body)
    resp = put_by_digest(client, body, digest, "v1", "latest")
    assert resp.status_code == 201 and resp.headers["Docker-Content-Digest"] == digest
    assert resp.headers["Location"] == f"/v2/{NAME}/manifests/{digest}"
    assert resp.headers.getlist("OCI-Tag") == ["v1", "latest"]
    for reference in (digest, "v1", "latest"):
        got = client.get(f"/v2/{NAME}/manifests/{reference}")
        assert got.status_code == 200 and got.get_data() == body
        assert got.headers["Docker-Content-Digest"] == digest
        assert client.head(f"/v2/{NAME}/manifests/{reference}").headers["Docker-Content-Digest"] == digest

    index = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        sha512_descriptor(OCI_MANIFEST, body, platform={"os": "linux", "architecture": "amd64"})]})
    assert put_by_digest(client, index, sha512(index), "multi", media_type=OCI_INDEX).status_code == 201
    sbom = go_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
                    "config": sha512_descriptor(OCI_CONFIG, config),
                    "layers": [sha512_descriptor(OCI_LAYER_GZIP, layer)],
                    "subject": sha512_descriptor(OCI_MANIFEST, body), "annotations": {"k": "v"}})
    pushed = put_by_digest(client, sbom, sha512(sbom))
    assert pushed.status_code == 201 and pushed.headers["OCI-Subject"] == digest
    referrers = client.get(f"/v2/{NAME}/referrers/{digest}").json["manifests"]
    assert referrers == [{"mediaType": OCI_MANIFEST, "digest": sha512(sbom), "size": len(sbom),
                          "artifactType": "application/spdx+json", "annotations": {"k": "v"}}]

    listed = {t["name"]: t["digest"] for t in client.get(f"/v2/{NAME}/_regext/tags").json["tags"]}
    assert listed == {"latest": digest, "multi": sha512(index), "v1": digest}
    assert client.get(f"/v2/{NAME}/_regext/tags?digest={digest}").json["tags"][0]["digest"] == digest
    indexed = client.get(f"/v2/{NAME}/tags/list", headers={"Accept": OCI_INDEX}).json["manifests"]
    assert {d["digest"] for d in indexed} == {digest, sha512(index)}

    assert client.delete(f"/v2/{NAME}/manifests/{sha512(index)}").status_code == 202
    assert client.delete(f"/v2/{NAME}/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/{NAME}/manifests/v1").status_code == 404
    assert tag_list(client, NAME) == []
    assert client.get(f"/v2/{NAME}/_oci/tag-history/v1").json["manifests"][0]["annotations"][
        "org.opencontainers.distribution.tag.event"] == "deleted"


def test_a_sha512_reference_must_match_the_body(client):
    image = make_image(client, NAME, tag=None)
    wrong = "sha512:" + "0" * 128
    doc = assert_error(put_by_digest(client, image["body"], wrong, "t"), 400, "DIGEST_INVALID")
    assert doc["errors"][0]["detail"] == {"expected": wrong, "actual": sha512(image["body"])}
    assert tag_list(client, NAME) == []
