"""Index-shaped tags/list (PR #579), newer-than, manifest listing, orphans, discovery."""
import json

import pytest

from tests.support.ext_helpers import push_tags, walk
from tests.support.oci_client import (EMPTY_DIGEST, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, assert_error, image_manifest,
                              put_manifest_ok, sha256_digest)

INDEX = {"Accept": OCI_INDEX}


def test_plain_tags_list_is_unchanged_without_the_index_accept(client, clock):
    push_tags(client, "app", ["b", "a", "1.0"])
    for accept in (None, "application/json", "*/*"):
        resp = client.get("/v2/app/tags/list", headers={"Accept": accept} if accept else {})
        assert resp.json == {"name": "app", "tags": ["1.0", "a", "b"]}
        assert resp.headers["Content-Type"] == "application/json"


def test_tags_list_varies_on_accept_and_honours_quality(client, clock):
    push_tags(client, "app", ["1"])
    resp = client.get("/v2/app/tags/list")
    assert resp.headers["Vary"] == "Accept"
    low = {"Accept": f"application/json;q=0.9, {OCI_INDEX};q=0.1"}
    assert client.get("/v2/app/tags/list", headers=low).headers["Content-Type"] == "application/json"
    high = {"Accept": f"application/json;q=0.1, {OCI_INDEX}"}
    assert client.get("/v2/app/tags/list", headers=high).headers["Content-Type"] == OCI_INDEX


def test_images_have_no_artifact_type_but_referrers_keep_the_fallback(client, clock):
    digests = push_tags(client, "app", ["1"])
    assert "artifactType" not in client.get("/v2/app/_regext/tags").json["tags"][0]
    subject = client.get(f"/v2/app/manifests/{digests['1']}")
    sig = image_manifest({"mediaType": "application/x.sig.config", "digest": EMPTY_DIGEST, "size": 2}, [],
                         subject={"mediaType": OCI_MANIFEST, "digest": digests["1"], "size": len(subject.data)})
    put_manifest_ok(client, "app", sha256_digest(sig), sig)
    refs = client.get(f"/v2/app/referrers/{digests['1']}").json["manifests"]
    assert [r["artifactType"] for r in refs] == ["application/x.sig.config"]


def test_index_shaped_tags_list(client, clock):
    digests = push_tags(client, "app", ["1.0.0", "1.10.0", "1.2.0"])
    resp = client.get("/v2/app/tags/list?sort_by=semver&sort_order=desc", headers=INDEX)
    assert resp.headers["Content-Type"] == OCI_INDEX
    doc = resp.json
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
    names = [d["annotations"]["org.opencontainers.image.ref.name"] for d in doc["manifests"]]
    assert names == ["1.10.0", "1.2.0", "1.0.0"]
    first = doc["manifests"][0]
    assert first["digest"] == digests["1.10.0"] and first["mediaType"] == OCI_MANIFEST and first["size"] > 0
    assert first["annotations"]["org.opencontainers.image.ref.created"].endswith("Z")


@pytest.mark.parametrize("sort_by", ["name", "created_at", "updated_at", "semver"])
def test_index_shaped_paging_follows_link(client, clock, sort_by):
    push_tags(client, "app", [f"1.{i}.0" for i in range(7)])
    url = f"/v2/app/tags/list?sort_by={sort_by}&n=3"
    seen = []
    while url:
        resp = client.get(url, headers=INDEX)
        seen += [d["annotations"]["org.opencontainers.image.ref.name"] for d in resp.json["manifests"]]
        link = resp.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert sorted(seen) == sorted(f"1.{i}.0" for i in range(7)) and len(seen) == 7


def test_index_shaped_bad_sort_is_400(client, clock):
    push_tags(client, "app", ["1"])
    assert_error(client.get("/v2/app/tags/list?sort_by=size", headers=INDEX), 400, "UNSUPPORTED")
    assert_error(client.get("/v2/app/tags/list?sort_order=sideways", headers=INDEX), 400, "UNSUPPORTED")


def test_image_created_annotation_comes_from_the_config(client, clock):
    config = b'{"created":"2024-05-01T10:00:00Z","os":"linux","architecture":"arm64","variant":"v8"}'
    push_tags(client, "app", ["1.0"], config=config)
    descriptor = client.get("/v2/app/tags/list", headers=INDEX).json["manifests"][0]
    assert descriptor["annotations"]["org.opencontainers.image.created"] == "2024-05-01T10:00:00Z"
    tag = client.get("/v2/app/_regext/tags").json["tags"][0]
    assert tag["imageCreated"] == "2024-05-01T10:00:00Z" and tag["platforms"] == ["linux/arm64/v8"]


def test_newer_than_respects_family_and_reports_moves(client, clock):
    tags = ["12.14", "12.15", "12.15.0", "12.16", "12.16-alpine", "13.0-rc1", "latest", "12.13"]
    digests = push_tags(client, "node", tags)
    resp = client.get(f"/v2/node/_regext/tags/12.14/newer?digest={digests['12.14']}")
    assert [t["name"] for t in resp.json["newer"]] == ["12.16", "12.15"]
    assert resp.json["moved"] is False and resp.json["digest"] == digests["12.14"]
    assert resp.json["newer"][0]["digest"] == digests["12.16"]
    push_tags(client, "node", ["12.14"])
    assert client.get(f"/v2/node/_regext/tags/12.14/newer?digest={digests['12.14']}").json["moved"] is True
    alpine = client.get("/v2/node/_regext/tags/12.15-alpine/newer").json
    assert [t["name"] for t in alpine["newer"]] == ["12.16-alpine"] and alpine["digest"] is None


def test_newer_than_a_tag_that_does_not_exist_and_a_limit(client, clock):
    push_tags(client, "app", [f"1.2.{i}" for i in range(10)])
    resp = client.get("/v2/app/_regext/tags/1.2.3/newer?n=2").json
    assert [t["name"] for t in resp["newer"]] == ["1.2.9", "1.2.8"] and resp["complete"] is False
    resp = client.get("/v2/app/_regext/tags/1.2.7/newer?n=2").json
    assert [t["name"] for t in resp["newer"]] == ["1.2.9", "1.2.8"] and resp["complete"] is True
    assert client.get("/v2/app/_regext/tags/latest/newer").json["newer"] == []


def test_a_deleted_tag_counts_as_moved(client, clock):
    digests = push_tags(client, "app", ["1.0", "1.1"])
    assert client.delete("/v2/app/manifests/1.0").status_code == 202
    resp = client.get(f"/v2/app/_regext/tags/1.0/newer?digest={digests['1.0']}").json
    assert resp["digest"] is None and resp["moved"] is True


def test_manifest_listing_includes_untagged_with_tags_and_referrers(client, clock):
    digests = push_tags(client, "app", ["1.0", "1.1"])
    untagged = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
                           "layers": []}).encode()
    loose = put_manifest_ok(client, "app", sha256_digest(untagged), untagged)
    subject = client.get(f"/v2/app/manifests/{digests['1.0']}")
    sig = image_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}, [],
                         subject={"mediaType": OCI_MANIFEST, "digest": digests["1.0"], "size": len(subject.data)},
                         artifact_type="application/x.sig")
    sig_digest = put_manifest_ok(client, "app", sha256_digest(sig), sig)
    listing = {m["digest"]: m for m in client.get("/v2/app/_regext/manifests").json["manifests"]}
    assert set(listing) == {digests["1.0"], digests["1.1"], loose, sig_digest}
    assert listing[digests["1.0"]]["tags"] == ["1.0"] and listing[digests["1.0"]]["referrers"] == 1
    assert listing[loose]["tags"] == [] and listing[sig_digest]["subject"] == digests["1.0"]
    untagged_only = client.get("/v2/app/_regext/manifests?tagged=false").json["manifests"]
    assert {m["digest"] for m in untagged_only} == {loose, sig_digest}
    walked, pages = walk(client, "/v2/app/_regext/manifests?n=1", key="manifests")
    assert len(walked) == 4 and pages == 4
    assert_error(client.get("/v2/app/_regext/manifests?cursor=zzz"), 400, "UNSUPPORTED")
    assert_error(client.get("/v2/app/_regext/manifests?tagged=maybe"), 400, "UNSUPPORTED")


def test_orphaned_signature_tags(client, clock):
    digests = push_tags(client, "app", ["1.0"])
    present = digests["1.0"].split(":")[1]
    absent = "f" * 64
    push_tags(client, "app", [f"sha256-{present}.sig", f"sha256-{absent}.sig", f"sha256-{absent}.att",
                              f"sha256-{absent}"])
    orphans = client.get("/v2/app/_regext/orphans").json["orphans"]
    assert sorted((o["name"], o["kind"]) for o in orphans) == [
        (f"sha256-{absent}", "referrers"), (f"sha256-{absent}.att", "att"), (f"sha256-{absent}.sig", "sig")]
    assert all(o["subject"] == f"sha256:{absent}" for o in orphans)
    kinds = {t["name"]: t for t in client.get("/v2/app/_regext/tags?kind=signature").json["tags"]}
    assert kinds[f"sha256-{present}.sig"]["signature"] == {"kind": "sig", "subject": digests["1.0"]}


def test_discover(client, clock):
    doc = client.get("/v2/_oci/ext/discover").json
    names = {e["name"]: e for e in doc["extensions"]}
    assert "/v2/<name>/_regext/tags" in names["_regext"]["endpoints"]
    assert "/v2/<name>/_oci/tag-history/<tag>" in names["_oci"]["endpoints"]
    assert {"/v2/_regext/updates", "/v2/<name>/_regext/feed.atom"} <= set(names["_regext"]["endpoints"])
    push_tags(client, "team/app", ["1"])
    repo = client.get("/v2/team/app/_oci/ext/discover").json
    assert "/v2/team/app/_regext/tags" in {e["name"]: e for e in repo["extensions"]}["_regext"]["endpoints"]


def test_discover_urls_are_links_a_client_can_open(client, settings):
    """`url`: the spec for `_oci`; for `_regext`, server.docs_url + extensions.md, or no `url` when unset."""
    from registry_ext import create_app
    from registry_ext.config import replace

    spec = "https://github.com/opencontainers/distribution-spec/blob/main/extensions/_oci.md"
    for path in ("/v2/_oci/ext/discover", "/v2/team/app/_oci/ext/discover"):
        names = {e["name"]: e for e in client.get(path).json["extensions"]}
        assert "url" not in names["_regext"] and names["_oci"]["url"] == spec
    published = create_app(replace(settings, "server", docs_url="https://docs.example/registry-ext/docs/"))
    for path in ("/v2/_oci/ext/discover", "/v2/team/app/_oci/ext/discover"):
        names = {e["name"]: e for e in published.test_client().get(path).json["extensions"]}
        assert names["_regext"]["url"] == "https://docs.example/registry-ext/docs/extensions.md"
        assert names["_oci"]["url"] == spec


@pytest.mark.parametrize("path", ["/v2/app/tags/list", "/v2/_catalog", "/v2/app/_regext/manifests",
                                  "/v2/app/_regext/orphans", "/v2/_oci/ext/discover"])
def test_every_listing_has_an_etag(client, clock, path):
    push_tags(client, "app", ["1"])
    etag = client.get(path).headers["ETag"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
