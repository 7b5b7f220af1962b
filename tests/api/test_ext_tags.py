"""The `_regext/tags` extension: sorts, cursors, filters, bad input, ETags."""
import re

import pytest

from tests.support.ext_helpers import push_tags, walk
from tests.support.oci_client import assert_error

TAGS = ["1.0.0", "1.2.0", "1.10.0", "1.9.1", "2.0.0-rc.1", "2.0.0", "2.0.0-alpine", "latest", "v3", "1.2"]


@pytest.fixture
def repo(client, clock):
    return push_tags(client, "app", TAGS)


def names(resp):
    assert resp.status_code == 200, resp.get_data()
    return [t["name"] for t in resp.json["tags"]]


def test_default_is_name_order_with_metadata(client, repo):
    resp = client.get("/v2/app/_regext/tags")
    assert names(resp) == sorted(TAGS)
    first = resp.json["tags"][0]
    assert first["digest"] == repo[first["name"]]
    assert first["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert first["platforms"] == ["linux/amd64"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["created"])
    assert first["kind"] in {"release", "prerelease", "nonversion"}


@pytest.mark.parametrize("sort", ["name", "created", "updated", "semver"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_walk_is_complete_and_ordered(client, repo, sort, order):
    full = names(client.get(f"/v2/app/_regext/tags?sort={sort}&order={order}"))
    walked, pages = walk(client, f"/v2/app/_regext/tags?sort={sort}&order={order}&n=3")
    assert [t["name"] for t in walked] == full
    assert pages == 4 and sorted(full) == sorted(TAGS)


def test_time_sorts_follow_push_and_move(client, repo, clock):
    push_tags(client, "app", ["1.0.0"])  # moves 1.0.0: updated changes, created does not
    assert names(client.get("/v2/app/_regext/tags?sort=created"))[0] == "1.0.0"
    assert names(client.get("/v2/app/_regext/tags?sort=updated&order=desc"))[0] == "1.0.0"
    assert names(client.get("/v2/app/_regext/tags?sort=updated"))[0] == "1.2.0"


def test_equal_timestamps_do_not_lose_tags_across_pages(client, clock):
    clock["step"] = 0
    push_tags(client, "same", [f"t{i:02d}" for i in range(25)])
    walked, _ = walk(client, "/v2/same/_regext/tags?sort=updated&n=4")
    assert [t["name"] for t in walked] == [f"t{i:02d}" for i in range(25)]


def test_last_with_time_sort_needs_an_existing_tag(client, repo):
    after = names(client.get("/v2/app/_regext/tags?sort=created&last=1.10.0"))
    assert after == TAGS[3:]
    assert_error(client.get("/v2/app/_regext/tags?sort=created&last=nope"), 400, "UNSUPPORTED")


def test_tags_deleted_between_pages_do_not_break_the_continuation(client, repo):
    resp = client.get("/v2/app/_regext/tags?n=3")
    assert names(resp) == sorted(TAGS)[:3]
    link = resp.headers["Link"]
    for tag in sorted(TAGS)[2:5]:  # the page's last tag and the next two
        assert client.delete(f"/v2/app/manifests/{tag}").status_code == 202
    rest, _ = walk(client, link[1:link.index(">")])
    assert [t["name"] for t in rest] == sorted(TAGS)[5:]


@pytest.mark.parametrize("query, expected", [
    ("prefix=1.", ["1.0.0", "1.10.0", "1.2", "1.2.0", "1.9.1"]),
    ("glob=2.*", ["2.0.0", "2.0.0-alpine", "2.0.0-rc.1"]),
    ("regex=%5E1%5C.%5B0-9%5D%2B%5C.0%24", ["1.0.0", "1.10.0", "1.2.0"]),
    ("kind=nonversion", ["latest"]),
    ("digest=DIGEST", ["1.9.1"]),
])
def test_filters(client, repo, query, expected):
    query = query.replace("DIGEST", repo["1.9.1"])
    assert names(client.get(f"/v2/app/_regext/tags?{query}")) == expected


def test_filters_page_with_a_continuation(client, repo):
    walked, pages = walk(client, "/v2/app/_regext/tags?prefix=1.&n=2")
    assert [t["name"] for t in walked] == ["1.0.0", "1.10.0", "1.2", "1.2.0", "1.9.1"]
    assert pages == 3


@pytest.mark.parametrize("query, expected", [
    ("sort=name&prefix=1.", ["1.0.0", "1.10.0", "1.2", "1.2.0", "1.9.1"]),
    ("sort=semver&range=%3E%3D1.2%2C%3C2", ["1.2", "1.2.0", "1.9.1", "1.10.0"]),
    ("sort=semver&kind=release", ["1.0.0", "1.2", "1.2.0", "1.9.1", "1.10.0", "2.0.0", "2.0.0-alpine", "v3"]),
])
def test_narrowed_scans_end_without_an_empty_page(client, repo, query, expected):
    push_tags(client, "app", [f"zz{i}" for i in range(160)])
    walked, pages = walk(client, f"/v2/app/_regext/tags?{query}&n=2")
    assert [t["name"] for t in walked] == expected
    assert pages == (len(expected) + 1) // 2


def test_hostile_regex_is_linear(client, clock):
    push_tags(client, "evil", ["a" * 100 + "b"])
    resp = client.get("/v2/evil/_regext/tags?regex=%28a%2B%29%2B%24")
    assert names(resp) == []


@pytest.mark.parametrize("query, parameter", [
    ("sort=size", "sort"), ("order=up", "order"), ("n=-1", "n"), ("n=abc", "n"),
    ("regex=%28", "regex"), ("regex=%28a%29%5C1", "regex"), ("regex=" + "a" * 300, "regex"),
    ("range=%3E%3Dbanana", "range"), ("kind=weird", "kind"), ("cursor=%21%21%21", "cursor"),
    ("cursor=eyJ2Ijo5fQ", "cursor"), ("last=" + "x" * 300, "last"),
])
def test_bad_input_is_400_in_the_envelope(client, repo, query, parameter):
    doc = assert_error(client.get(f"/v2/app/_regext/tags?{query}"), 400, "UNSUPPORTED")
    assert doc["errors"][0]["detail"]["parameter"] == parameter


def test_cursor_from_another_sort_is_refused(client, repo):
    link = client.get("/v2/app/_regext/tags?n=2&sort=name").headers["Link"]
    cursor = re.search(r"cursor=([^&>]+)", link).group(1)
    assert_error(client.get(f"/v2/app/_regext/tags?sort=created&cursor={cursor}"), 400, "UNSUPPORTED")


def test_unknown_repository_is_name_unknown(client):
    assert_error(client.get("/v2/nothing/_regext/tags"), 404, "NAME_UNKNOWN")


def test_etag_and_if_none_match(client, repo):
    first = client.get("/v2/app/_regext/tags?sort=semver")
    etag = first.headers["ETag"]
    again = client.get("/v2/app/_regext/tags?sort=semver", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    push_tags(client, "app", ["9.9.9"])
    assert client.get("/v2/app/_regext/tags?sort=semver", headers={"If-None-Match": etag}).status_code == 200


def test_digest_to_tags(client, repo):
    resp = client.get(f"/v2/app/_regext/digests/{repo['2.0.0']}/tags")
    assert resp.json["tags"] == ["2.0.0"]
    assert_error(client.get("/v2/app/_regext/digests/sha256:" + "0" * 64 + "/tags"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get("/v2/app/_regext/digests/sha256:zz/tags"), 400, "DIGEST_INVALID")
