"""GET /v2/<name>/_oci/tag-history/<tag> (distribution-spec PR #606, `_oci` component `tag-history`).

Through the API: push -> move -> delete -> push again, kept after the tag is
deleted, delete by digest. With events written directly by
``RepoStore.record_history`` (to control times): exact annotations, newest
first, before/since/digest, paging across equal milliseconds, default and
clamped page sizes, n=0, unknown repository/tag, bad input, ETag/304.
"""
from __future__ import annotations

import re

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from registry_ext.services.check import check
from registry_ext.storage import history
from registry_ext.services.history import format_timestamp
from registry_ext.storage import HistoryEvent
from registry_ext.storage.history import encode
from tests.support.oci_client import (OCI_INDEX, OCI_MANIFEST, assert_error, body_json, link_next, make_image,
                              put_manifest_ok, query_of, with_query)

TS = "org.opencontainers.distribution.tag.timestamp"
EV = "org.opencontainers.distribution.tag.event"
T0 = 1784810096789  # 2026-07-23T12:34:56.789Z
DA, DB, DC = ("sha256:" + c * 64 for c in "abc")


def get(client, name: str, tag: str, headers=None, **query):
    url = f"/v2/{name}/_oci/tag-history/{tag}"
    return client.get(with_query(url, **query) if query else url, headers=headers)


def manifests(resp) -> list[dict]:
    assert resp.status_code == 200, resp.get_data()
    assert resp.mimetype == OCI_INDEX
    doc = body_json(resp)
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
    return doc["manifests"]


def summary(entries) -> list[tuple[str, str, str]]:
    return [(e["annotations"][EV], e["digest"], e["annotations"][TS]) for e in entries]


def record(app, name: str, tag: str, digest: str, at: int, event: str = "created", size: int = 100):
    app.extensions["registry"].storage.repos.record_history(
        name, HistoryEvent(tag, digest, at, event, OCI_MANIFEST, size))


def follow(client, name: str, tag: str, **query) -> tuple[list[dict], list[dict]]:
    """Every entry reached by following Link headers, and each page's query."""
    resp, out, pages = get(client, name, tag, **query), [], []
    while True:
        out += manifests(resp)
        nxt = link_next(resp)
        if nxt is None:
            return out, pages
        pages.append(query_of(nxt))
        assert nxt.startswith(f"/v2/{name}/_oci/tag-history/{tag}?")
        resp = client.get(nxt)


# ---------------------------------------------------------------- through the API

def test_push_move_delete_push_again(client):
    a = make_image(client, "hist/app", tag="v1")
    b = make_image(client, "hist/app", tag="v1")
    assert client.delete("/v2/hist/app/manifests/v1").status_code == 202
    put_manifest_ok(client, "hist/app", "v1", a["body"])
    put_manifest_ok(client, "hist/app", "v1", a["body"])  # same digest again: no event
    entries = manifests(get(client, "hist/app", "v1"))
    assert [(e["annotations"][EV], e["digest"]) for e in entries] == [
        ("created", a["manifest"]), ("deleted", b["manifest"]), ("created", b["manifest"]),
        ("created", a["manifest"])]
    for entry, image in zip(entries, (a, b, b, a)):
        assert entry == {"mediaType": OCI_MANIFEST, "digest": image["manifest"], "size": image["size"],
                         "annotations": {TS: entry["annotations"][TS], EV: entry["annotations"][EV]}}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["annotations"][TS])
    stamps = [e["annotations"][TS] for e in entries]
    assert stamps == sorted(stamps, reverse=True)


def test_history_is_kept_after_the_tag_and_its_manifest_are_deleted(client):
    a = make_image(client, "gone", tag="v1")
    put_manifest_ok(client, "gone", "v2", a["body"])
    assert client.delete(f"/v2/gone/manifests/{a['manifest']}").status_code == 202
    assert client.get("/v2/gone/manifests/v1").status_code == 404
    for tag in ("v1", "v2"):
        entries = manifests(get(client, "gone", tag))
        assert [(e["annotations"][EV], e["digest"], e["size"]) for e in entries] == [
            ("deleted", a["manifest"], a["size"]), ("created", a["manifest"], a["size"])]


def test_unknown_repository_and_tag_are_200_and_empty(client):
    make_image(client, "known", tag="v1")
    for name, tag in (("nobody/here", "latest"), ("known", "never-pushed")):
        resp = get(client, name, tag)
        assert manifests(resp) == [] and "Link" not in resp.headers
    assert manifests(get(client, "nobody", "latest", n=0)) == []


def test_ns_and_unknown_parameters_are_ignored(client):
    a = make_image(client, "nsrepo", tag="v1")
    entries = manifests(get(client, "nsrepo", "v1", ns="docker.io", foo="bar", last="zzz"))
    assert [e["digest"] for e in entries] == [a["manifest"]]


# ---------------------------------------------------------------- exact output and filters

def test_annotations_are_exact_and_moved_is_reported_as_created(client, app):
    record(app, "exact", "t", DA, T0, "created", size=10)
    record(app, "exact", "t", DB, T0 + 1000, "moved", size=20)
    record(app, "exact", "t", DB, T0 + 61_211, "deleted", size=20)
    assert manifests(get(client, "exact", "t")) == [
        {"mediaType": OCI_MANIFEST, "digest": DB, "size": 20,
         "annotations": {TS: "2026-07-23T12:35:58.000Z", EV: "deleted"}},
        {"mediaType": OCI_MANIFEST, "digest": DB, "size": 20,
         "annotations": {TS: "2026-07-23T12:34:57.789Z", EV: "created"}},
        {"mediaType": OCI_MANIFEST, "digest": DA, "size": 10,
         "annotations": {TS: "2026-07-23T12:34:56.789Z", EV: "created"}},
    ]


def test_a_clock_stepping_back_keeps_the_log_in_time_order(client, app):
    for digest, at in ((DA, T0 + 5), (DB, T0), (DC, T0 + 9)):  # a clock stepped back
        record(app, "order", "t", digest, at)
    entries = manifests(get(client, "order", "t"))
    assert summary(entries) == [("created", DC, format_timestamp(T0 + 9)), ("created", DB, format_timestamp(T0 + 5)),
                                ("created", DA, format_timestamp(T0 + 5))]  # DB is stored at the time before it


@pytest.fixture
def three(app):
    """DA at T0, DB at T0+1000, DA again at T0+2000, then DA deleted at T0+3000."""
    record(app, "flt", "t", DA, T0)
    record(app, "flt", "t", DB, T0 + 1000, "moved")
    record(app, "flt", "t", DA, T0 + 2000, "moved")
    record(app, "flt", "t", DA, T0 + 3000, "deleted")


@pytest.mark.parametrize("query, expected", [
    ({"before": "2026-07-23T12:34:58.789Z"}, [T0 + 1000, T0]),               # strictly older
    ({"before": "2026-07-23T12:34:58.7891Z"}, [T0 + 2000, T0 + 1000, T0]),   # sub-ms precision is exact
    ({"before": "2026-07-23T14:34:58.789+02:00"}, [T0 + 1000, T0]),          # any offset
    ({"before": "2026-07-23t12:34:58.789z"}, [T0 + 1000, T0]),               # RFC 3339 5.6: lower case
    ({"since": "2026-07-23T12:34:57.789Z"}, [T0 + 3000, T0 + 2000]),         # strictly newer
    ({"since": "2026-07-23T12:34:57.7889Z"}, [T0 + 3000, T0 + 2000, T0 + 1000]),
    ({"since": "2026-07-23T07:34:57-05:00"}, [T0 + 3000, T0 + 2000, T0 + 1000]),
    ({"since": "2026-07-23T12:34:56.789Z", "before": "2026-07-23T12:34:59.789Z"}, [T0 + 2000, T0 + 1000]),
    ({"since": "2026-07-23T12:35:00Z", "before": "2026-07-23T12:34:00Z"}, []),
    ({"digest": DA}, [T0 + 3000, T0 + 2000, T0]),
    ({"digest": DB}, [T0 + 1000]),
    ({"digest": DC}, []),
    ({"digest": DA, "before": "2026-07-23T12:34:59.789Z"}, [T0 + 2000, T0]),
    ({"before": "", "since": "", "digest": ""}, [T0 + 3000, T0 + 2000, T0 + 1000, T0]),  # empty = absent
])
def test_filters(client, three, query, expected):
    entries = manifests(get(client, "flt", "t", **query))
    assert [e["annotations"][TS] for e in entries] == [format_timestamp(at) for at in expected]


# ---------------------------------------------------------------- paging

def test_paging_across_equal_milliseconds_neither_loses_nor_repeats(client, app):
    times = [T0, T0, T0, T0 + 1, T0 + 1, T0 + 2, T0 + 2, T0 + 2, T0 + 2, T0 + 3]
    for i, at in enumerate(times):
        record(app, "page", "t", f"sha256:{i:064x}", at)
    everything = manifests(get(client, "page", "t"))
    assert [e["digest"] for e in everything] == [f"sha256:{i:064x}" for i in reversed(range(10))]
    for n in (1, 2, 3, 4, 9, 10):
        entries, pages = follow(client, "page", "t", n=n)
        assert entries == everything, n
        assert len(pages) == (10 - 1) // n
        assert all(p["n"] == str(n) for p in pages)


def test_paging_keeps_the_filters(client, app):
    for i in range(8):
        record(app, "pf", "t", DA if i % 2 else DB, T0 + i // 3)
    wanted = manifests(get(client, "pf", "t", digest=DA, since="2026-07-23T12:34:56.789Z"))
    entries, pages = follow(client, "pf", "t", n=1, digest=DA, since="2026-07-23T12:34:56.789Z")
    assert entries == wanted and len(wanted) == 3
    assert all(p["digest"] == DA and p["since"] == "2026-07-23T12:34:56.789Z" for p in pages)
    assert "before" not in pages[0]


def test_a_page_ending_at_the_last_entry_has_no_link(client, app):
    for i in range(3):
        record(app, "end", "t", DA, T0 + i)
    resp = get(client, "end", "t", n=3)
    assert len(manifests(resp)) == 3 and "Link" not in resp.headers
    resp = get(client, "end", "t", n=2)
    assert link_next(resp) is not None


def test_n_zero_is_empty_without_link(client, app):
    record(app, "zero", "t", DA, T0)
    resp = get(client, "zero", "t", n=0)
    assert manifests(resp) == [] and "Link" not in resp.headers


def test_default_page_is_100_and_n_is_clamped_to_page_max(client, app, settings):
    for i in range(105):
        record(app, "big", "t", DA, T0 + i)
    resp = get(client, "big", "t")
    assert len(manifests(resp)) == 100 and query_of(link_next(resp))["n"] == "100"
    small = create_app(replace(settings, "limits", page_max=3)).test_client()
    for query in ({}, {"n": 50}, {"n": 10**30}):
        resp = get(small, "big", "t", **query)
        assert len(manifests(resp)) == 3 and query_of(link_next(resp))["n"] == "3"
    assert len(follow(small, "big", "t")[0]) == 105


def test_a_long_history_in_many_segments_pages_through_every_filter(client, app, settings, monkeypatch):
    """Issue #10 item 8: pages are read from the end of a segmented log; every filter crosses segments."""
    monkeypatch.setattr(history, "SEGMENT_BYTES", 600)  # three or four events per segment
    for i in range(90):
        record(app, "long", "t", (DA, DB, DB, DC)[i % 4], T0 + 10 * (i // 2))
    assert app.extensions["registry"].storage.repos.tag_history("long", "t").newest_segment() >= 20
    everything = manifests(get(client, "long", "t", n=1000))
    assert len(everything) == 90
    stamps = [e["annotations"][TS] for e in everything]
    assert stamps == sorted(stamps, reverse=True)
    for n in (1, 7, 89, 90):
        assert follow(client, "long", "t", n=n)[0] == everything
    window = {"since": format_timestamp(T0 + 100), "before": format_timestamp(T0 + 300)}
    assert follow(client, "long", "t", n=4, **window)[0] == [
        e for e in everything if format_timestamp(T0 + 100) < e["annotations"][TS] < format_timestamp(T0 + 300)]
    for digest in (DA, DC):
        assert follow(client, "long", "t", n=5, digest=digest)[0] == [e for e in everything if e["digest"] == digest]


def test_a_filter_passes_over_at_most_scan_max_entries_per_page(client, app, settings):
    for i in range(40):
        record(app, "scan", "t", DA if i in (3, 30) else DB, T0 + i)
    bounded = create_app(replace(settings, "limits", scan_max=10)).test_client()
    sizes, resp = [], get(bounded, "scan", "t", digest=DA, n=5)
    while True:  # 9 passed over, DA at T0+30, 1 more: 10; then 10; 10; 5, DA at T0+3, 3 and the end
        sizes.append([e["annotations"][TS] for e in manifests(resp)])
        if link_next(resp) is None:
            break
        assert query_of(link_next(resp))["digest"] == DA
        resp = bounded.get(link_next(resp))
    assert sizes == [[format_timestamp(T0 + 30)], [], [], [format_timestamp(T0 + 3)]]
    unfiltered = get(bounded, "scan", "t", n=25)  # entries that are returned do not count against it
    assert len(manifests(unfiltered)) == 25


def test_a_cursor_stays_valid_while_the_tag_keeps_moving(client, app):
    for i in range(10):
        record(app, "moving", "t", DA if i % 2 else DB, T0 + i)
    first = get(client, "moving", "t", n=4)
    second = client.get(link_next(first))
    for i in range(10, 30):
        record(app, "moving", "t", DC, T0 + i)
    assert manifests(client.get(link_next(first))) == manifests(second)


@pytest.mark.parametrize("cursor", ["1784810096789.3", "0-1", "0-100000", "7-0", "0--1", "x-0"])
def test_a_cursor_that_names_no_entry_is_400(client, three, cursor):
    """Old `<ms>.<seq>` cursors, offsets inside a line or past the end, segments that do not exist."""
    doc = assert_error(get(client, "flt", "t", cursor=cursor), 400, "UNSUPPORTED")
    assert doc["errors"][0]["message"] == "query parameter cursor is invalid: use the Link header's URL as given"


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("query, code, needle", [
    ({"n": "-1"}, "UNSUPPORTED", "n"),
    ({"n": "ten"}, "UNSUPPORTED", "n"),
    ({"before": "yesterday"}, "UNSUPPORTED", "before"),
    ({"before": "2026-07-23"}, "UNSUPPORTED", "before"),
    ({"before": "2026-07-23T12:34:56"}, "UNSUPPORTED", "before"),        # no offset
    ({"before": "2026-02-30T00:00:00Z"}, "UNSUPPORTED", "before"),
    ({"before": "2026-07-23T24:00:00Z"}, "UNSUPPORTED", "before"),
    ({"before": "2026-07-23T12:34:56+24:00"}, "UNSUPPORTED", "before"),
    ({"before": "0000-01-01T00:00:00Z"}, "UNSUPPORTED", "before"),
    ({"before": "2026-07-23T12:34:56." + "1" * 80 + "Z"}, "UNSUPPORTED", "before"),
    ({"before": "1784810096789"}, "UNSUPPORTED", "before"),
    ({"since": "2026-07-23 12:34:56Z"}, "UNSUPPORTED", "since"),
    ({"since": "2026-07-23T12:34:56.Z"}, "UNSUPPORTED", "since"),
    ({"since": "２０２６-07-23T12:34:56Z"}, "UNSUPPORTED", "since"),     # non-ASCII digits
    ({"digest": "sha256:1234"}, "DIGEST_INVALID", "digest"),
    ({"digest": "md5:d41d8cd98f00b204e9800998ecf8427e"}, "DIGEST_INVALID", "digest"),
    ({"digest": "latest"}, "DIGEST_INVALID", "digest"),
    ({"cursor": "abc"}, "UNSUPPORTED", "cursor"),
])
def test_bad_query_is_400(client, three, query, code, needle):
    doc = assert_error(get(client, "flt", "t", **query), 400, code)
    assert needle in doc["errors"][0]["message"] + str(doc["errors"][0].get("detail"))


def test_unencoded_plus_gets_a_hint(client):
    resp = client.get("/v2/r/_oci/tag-history/t?before=2026-07-23T12:34:56+02:00")
    doc = assert_error(resp, 400, "UNSUPPORTED")
    assert "%2B" in doc["errors"][0]["message"]


@pytest.mark.parametrize("path", [
    "/v2/r/_oci/tag-history/.hidden", "/v2/r/_oci/tag-history/-dash", "/v2/r/_oci/tag-history/a:b",
    "/v2/r/_oci/tag-history/" + "a" * 129, "/v2/r/_oci/tag-history/", "/v2/r/_oci/tag-history",
    "/v2/r/_oci/tag-history/a/b", "/v2/r/_oci/tag-history/a%2Fb", "/v2/r/_oci/tag-history/..",
])
def test_invalid_tag_is_400_unsupported(client, path):
    doc = assert_error(client.get(path), 400, "UNSUPPORTED")
    assert "invalid tag" in doc["errors"][0]["message"]


def test_invalid_name_is_400_name_invalid(client):
    assert_error(client.get("/v2/Bad/_oci/tag-history/v1"), 400, "NAME_INVALID")
    assert_error(client.get("/v2/a//b/_oci/tag-history/v1"), 400, "NAME_INVALID")


def test_longest_valid_tag_is_accepted(client):
    assert manifests(get(client, "r", "a" * 128)) == []


# ---------------------------------------------------------------- conditional requests

def test_etag_and_if_none_match(client, app):
    record(app, "etag", "t", DA, T0)
    first = get(client, "etag", "t")
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = get(client, "etag", "t", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert get(client, "etag", "t", headers={"If-None-Match": '"other"'}).status_code == 200
    assert get(client, "etag", "t", headers={"If-None-Match": "*"}).status_code == 304
    record(app, "etag", "t", DB, T0 + 1)
    changed = get(client, "etag", "t", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert len(manifests(changed)) == 2


def test_etag_covers_the_link(client, app):
    """An older entry can reappear: `check --repair` salvages an event glued onto a torn line."""
    reg = app.extensions["registry"]
    make_image(client, "etl", tag=None)  # a repository, so that check looks at it
    record(app, "etl", "t", DA, T0 + 5)
    path = reg.storage.layout.history_segment("etl", "t", 0)
    older = encode(HistoryEvent("t", DB, T0 + 1, "created", OCI_MANIFEST, 100))
    path.write_bytes(b'{"digest":"sha256:bbbb' + older + path.read_bytes())  # torn, DB written onto it, DA
    last_page = get(client, "etl", "t", n=1)
    assert link_next(last_page) is None
    check(reg.storage, reg.index, repair=True)
    not_last = get(client, "etl", "t", n=1, headers={"If-None-Match": last_page.headers["ETag"]})
    assert not_last.status_code == 200 and link_next(not_last) is not None
    assert manifests(not_last) == manifests(last_page)


def test_head_has_the_headers_and_no_body(client, app):
    record(app, "head", "t", DA, T0)
    resp = client.head("/v2/head/_oci/tag-history/t")
    assert resp.status_code == 200 and resp.get_data() == b""
    assert resp.mimetype == OCI_INDEX and resp.headers["ETag"]
