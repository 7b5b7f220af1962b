"""`fields=` on `_regext/tags` and `newer` (issue #11, item 7): compact answers of only the asked fields."""
from __future__ import annotations

import orjson
import pytest

from registry_ext import create_app
from registry_ext.config import replace
from tests.support.ext_helpers import push_tags, walk
from tests.support.oci_client import assert_error, link_next

TAGS = ["1.0.0", "1.2.0", "1.2.3", "1.9.1", "1.10.0", "2.0.0", "latest"]


@pytest.fixture
def repo(client, clock):
    return push_tags(client, "app", TAGS)


def test_tags_with_names_and_digests_only(client, repo):
    resp = client.get("/v2/app/_regext/tags?fields=name,digest")
    assert resp.status_code == 200, resp.get_data()
    assert resp.json["tags"] == [{"name": t, "digest": repo[t]} for t in sorted(TAGS)]


def test_fields_keep_the_tag_order_whatever_the_query_order(client, repo):
    resp = client.get("/v2/app/_regext/tags?fields=digest,name&n=1")
    assert list(resp.json["tags"][0]) == ["name", "digest"]


def test_a_field_a_tag_lacks_is_left_out(client, repo):
    tags = client.get("/v2/app/_regext/tags?fields=name,signature,kind").json["tags"]
    assert tags[0] == {"name": "1.0.0", "kind": "release"}


def test_compact_pages_walk_every_tag_with_the_same_fields(client, repo):
    walked, pages = walk(client, "/v2/app/_regext/tags?fields=name&sort=semver&order=desc&n=3")
    assert walked == [{"name": t} for t in ["latest", "2.0.0", "1.10.0", "1.9.1", "1.2.3", "1.2.0", "1.0.0"]]
    assert pages == 3


def test_page_byte_budget_counts_the_compact_form(settings, clock):
    """At a 1,500-byte page budget, full entries fit a few a page; names only fit all 40."""
    client = create_app(replace(settings, "limits", page_max_bytes=1500)).test_client()
    push_tags(client, "many", [f"1.0.{i}" for i in range(40)])
    full = client.get("/v2/many/_regext/tags")
    assert link_next(full) is not None and len(full.json["tags"]) < 10
    compact = client.get("/v2/many/_regext/tags?fields=name")
    assert link_next(compact) is None and len(compact.json["tags"]) == 40


def test_newer_with_names_and_digests_only(client, repo):
    resp = client.get("/v2/app/_regext/tags/1.2.0/newer?fields=name,digest&n=100")
    assert resp.status_code == 200, resp.get_data()
    expected = [{"name": t, "digest": repo[t]} for t in ["2.0.0", "1.10.0", "1.9.1", "1.2.3"]]
    assert resp.json == {"name": "app", "tag": "1.2.0", "digest": repo["1.2.0"], "newer": expected,
                         "complete": True}


def test_newer_names_only_is_smaller_than_the_full_answer(client, repo):
    full = client.get("/v2/app/_regext/tags/1.0.0/newer?n=100").get_data()
    names = client.get("/v2/app/_regext/tags/1.0.0/newer?n=100&fields=name").get_data()
    assert orjson.loads(names)["newer"] == [{"name": t} for t in ["2.0.0", "1.10.0", "1.9.1", "1.2.3", "1.2.0"]]
    assert len(names) < len(full) / 2


@pytest.mark.parametrize("path", ["_regext/tags", "_regext/tags/1.2.0/newer"])
@pytest.mark.parametrize("value, message", [
    ("name,bogus", "unknown field 'bogus'"), ("name,", "unknown field ''"), ("name,name", "twice"),
    ("Name", "unknown field 'Name'"), ("name," * 60, "longer than 256"),
])
def test_bad_fields_are_400_in_the_envelope(client, repo, path, value, message):
    doc = assert_error(client.get(f"/v2/app/{path}?fields={value}"), 400, "UNSUPPORTED")
    assert doc["errors"][0]["detail"] == {"parameter": "fields"}
    assert message in doc["errors"][0]["message"]


def test_newer_refuses_a_tag_listing_field(client, repo):
    doc = assert_error(client.get("/v2/app/_regext/tags/1.2.0/newer?fields=name,size"), 400, "UNSUPPORTED")
    assert doc["errors"][0]["message"] == "unknown field 'size'; fields are name, digest, updated"


def test_empty_fields_is_absent(client, repo):
    assert client.get("/v2/app/_regext/tags?fields=&n=1").json == client.get("/v2/app/_regext/tags?n=1").json
