"""Listings cost bounded memory (issue #10, item 7).

The attack of the issue: one manifest whose `org.opencontainers.image.title` annotation is 1 MB,
under 300 tags. Every listing copied the 1 MB label into each of the 300 entries (~300 MB for one
request). Now the index keeps at most `limits.entry_fields_max_bytes` of such fields per manifest
(the rest dropped, named in `truncated`), and a page stops at `limits.page_max_bytes` of entries with a
`Link` to the rest (at least one entry a page), in every listing that copies manifest entries:
`_regext/tags`, the index-shaped `tags/list`, `_regext/manifests` and referrers.
"""
from __future__ import annotations

import tracemalloc

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from registry_ext.services.check import check
from registry_ext.services.reindex import reindex
from tests.support.oci_client import (
    OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, descriptor, go_json, image_manifest, link_next, make_image,
    put_manifest_ok, sha256_digest,
)

NAME = "limits/app"
BIG = "x" * (1 << 20)


def push_big_under_300_tags(client) -> str:
    image = make_image(client, NAME, tag=None, annotations={"org.opencontainers.image.title": BIG,
                                                             "org.opencontainers.image.version": "1.0"})
    for first in range(0, 300, 100):
        query = "&".join(f"tag=t{i:03d}" for i in range(first, first + 100))
        resp = client.put(f"/v2/{NAME}/manifests/{image['manifest']}?{query}", data=image["body"],
                          headers={"Content-Type": OCI_MANIFEST})
        assert resp.status_code == 201
    return image["manifest"]


def measured(client, url: str, **kwargs):
    """The response and the peak of Python memory allocated while answering it."""
    tracemalloc.start()
    try:
        resp = client.get(url, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return resp, peak


def test_a_1mb_annotation_under_300_tags_costs_kilobytes_per_listing(client, app):
    digest = push_big_under_300_tags(client)
    for url, headers, key in ((f"/v2/{NAME}/_regext/tags?n=300", {}, "tags"),
                              (f"/v2/{NAME}/tags/list?n=300", {"Accept": OCI_INDEX}, "manifests"),
                              (f"/v2/{NAME}/_regext/manifests", {}, "manifests")):
        resp, peak = measured(client, url, headers=headers)
        assert resp.status_code == 200
        assert len(resp.get_data()) < 200_000, (url, len(resp.get_data()))  # was ~300 MB
        assert peak < 8_000_000, (url, peak)
        assert len(resp.json[key]) == (1 if "manifests?" in url or url.endswith("manifests") else 300)
    tag = client.get(f"/v2/{NAME}/_regext/tags?n=1").json["tags"][0]
    assert tag["labels"] == {"version": "1.0"} and tag["truncated"] == ["labels"]
    entry = client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"][0]
    assert entry["digest"] == digest and entry["truncated"] == ["labels"] and len(entry["tags"]) == 300
    # the manifest itself is served whole, and the bounded index is what storage implies
    assert BIG in client.get(f"/v2/{NAME}/manifests/t000").get_data(as_text=True)
    reg = app.extensions["registry"]
    assert check(reg.storage, reg.index).findings == []
    reindex(reg.storage, reg.index)
    assert client.get(f"/v2/{NAME}/_regext/tags?n=1").json["tags"][0]["truncated"] == ["labels"]


@pytest.fixture
def small_pages(settings):
    """An app whose listing pages stop at 1,500 bytes of entries."""
    app = create_app(replace(settings, "limits", page_max_bytes=1500))
    return app.test_client()


def walk(client, url: str, key: str, headers=None) -> list[list[dict]]:
    """Every page of a listing, following Link; each page's body is checked against the bound."""
    pages = []
    while url:
        resp = client.get(url, headers=headers or {})
        assert resp.status_code == 200, resp.get_data()
        items = resp.json[key]
        assert items, url  # never an empty page while a Link is given
        assert len(resp.get_data()) <= 1500 + 200 or len(items) == 1
        pages.append(items)
        url = link_next(resp)
    return pages


@pytest.mark.parametrize("query, index_query", [("", ""), ("sort=semver&order=desc", "sort_by=semver&sort_order=desc"),
                                                ("sort=updated", "sort_by=updated_at"), ("prefix=v", "prefix=v")])
def test_tag_pages_are_cut_by_bytes_with_a_link(small_pages, query, index_query):
    made = {f"v1.{i}": make_image(small_pages, NAME, tag=f"v1.{i}")["manifest"] for i in range(12)}
    pages = walk(small_pages, f"/v2/{NAME}/_regext/tags?n=100&{query}", "tags")
    assert len(pages) > 2
    assert {t["name"]: t["digest"] for page in pages for t in page} == made
    assert sum(len(page) for page in pages) == 12
    index_pages = walk(small_pages, f"/v2/{NAME}/tags/list?{index_query}", "manifests", {"Accept": OCI_INDEX})
    assert len(index_pages) > 1
    names = [d["annotations"]["org.opencontainers.image.ref.name"] for page in index_pages for d in page]
    assert sorted(names) == sorted(made) and len(names) == 12


def test_manifest_pages_are_cut_by_bytes_with_a_link(small_pages):
    made = [make_image(small_pages, NAME, tag=None)["manifest"] for _ in range(8)]
    for query in ("", "&tagged=false", "&order=asc"):
        pages = walk(small_pages, f"/v2/{NAME}/_regext/manifests?n=100{query}", "manifests")
        assert len(pages) > 1
        listed = [m["digest"] for page in pages for m in page]
        assert sorted(listed) == sorted(made) and len(listed) == 8


def test_a_page_holds_one_entry_however_small_the_budget(settings):
    client = create_app(replace(settings, "limits", page_max_bytes=1)).test_client()
    for i in range(3):
        make_image(client, NAME, tag=f"{i}")
    pages = walk(client, f"/v2/{NAME}/_regext/tags", "tags")
    assert [[t["name"] for t in page] for page in pages] == [["0"], ["1"], ["2"]]


def test_referrers_keep_whole_annotations_and_are_cut_by_bytes(client):
    subject = make_image(client, NAME, tag="app")
    config = b"{}"
    signatures = []
    for i in range(3):
        body = image_manifest(descriptor(OCI_CONFIG, config), [], artifact_type="application/x.sig",
                              subject={"mediaType": OCI_MANIFEST, "digest": subject["manifest"],
                                       "size": subject["size"]},
                              annotations={"big": str(i) * 700_000})
        client.post(f"/v2/{NAME}/blobs/uploads/?digest={sha256_digest(config)}", data=config)
        signatures.append(put_manifest_ok(client, NAME, sha256_digest(body), body))
    url, seen = f"/v2/{NAME}/referrers/{subject['manifest']}", []
    while url:
        resp, peak = measured(client, url)
        doc = resp.json
        assert len(doc["manifests"]) == 1  # 700 kB each: the default 1 MiB budget holds one
        assert doc["manifests"][0]["annotations"]["big"] == doc["manifests"][0]["annotations"]["big"][0] * 700_000
        assert doc["manifests"][0]["artifactType"] == "application/x.sig"
        assert peak < 12_000_000
        seen.append(doc["manifests"][0]["digest"])
        url = link_next(resp)
    assert sorted(seen) == sorted(signatures)
    # listings carry no annotations at all
    listed = client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"]
    assert len(go_json(listed)) < 10_000


def test_entries_written_before_the_bounds_are_served_then_repaired(client, app, redis_client, settings):
    """An index built by an older version holds referrer annotations in the entry itself: referrers
    still serve them, and `check --repair` (or `reindex`) moves them to the bounded form."""
    subject = make_image(client, NAME, tag="app")
    body = image_manifest(descriptor(OCI_CONFIG, b"{}"), [], artifact_type="application/x.sig",
                          subject={"mediaType": OCI_MANIFEST, "digest": subject["manifest"], "size": subject["size"]},
                          annotations={"k": "v"})
    client.post(f"/v2/{NAME}/blobs/uploads/?digest={sha256_digest(b'{}')}", data=b"{}")
    digest = put_manifest_ok(client, NAME, sha256_digest(body), body)
    base = f"{settings.redis.key_prefix}:repo:{{{NAME}}}"
    entry = redis_client.hget(f"{base}:manifests", digest).decode()
    old = entry[:-1] + ',"annotations":{"k":"v"}}'
    redis_client.hset(f"{base}:manifests", digest, old)
    redis_client.hdel(f"{base}:descriptors", digest)
    expected = [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
                 "artifactType": "application/x.sig", "annotations": {"k": "v"}}]
    assert client.get(f"/v2/{NAME}/referrers/{subject['manifest']}").json["manifests"] == expected
    reg = app.extensions["registry"]
    assert [f.kind for f in check(reg.storage, reg.index, repair=True).findings] == ["index-drift"]
    assert redis_client.hget(f"{base}:manifests", digest).decode() == entry
    assert client.get(f"/v2/{NAME}/referrers/{subject['manifest']}").json["manifests"] == expected
