"""Atom feeds: per repository and across repositories, newest first, valid RFC 4287 documents."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.support.feed_helpers import manifests, tag
from tests.support.oci_client import assert_error, make_image

NS = {"a": "http://www.w3.org/2005/Atom"}


def parse(resp) -> ET.Element:
    assert resp.status_code == 200, resp.get_data()
    assert resp.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(resp.get_data())
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    for required in ("a:id", "a:title", "a:updated", "a:author/a:name"):
        assert root.find(required, NS) is not None, required
    for entry in root.findall("a:entry", NS):
        for required in ("a:id", "a:title", "a:updated", "a:link"):
            assert entry.find(required, NS) is not None, required
    return root


def titles(root) -> list[str]:
    return [e.find("a:title", NS).text for e in root.findall("a:entry", NS)]


def test_repository_feed_is_newest_first_without_deletes(client):
    m = manifests(client, "atom/app", 2)
    tag(client, "atom/app", "1.0", m[0])
    tag(client, "atom/app", "1.0", m[1])
    tag(client, "atom/app", "tmp", m[0])
    assert client.delete("/v2/atom/app/manifests/tmp").status_code == 202
    root = parse(client.get("/v2/atom/app/_regext/feed.atom"))
    short = [d[1].split(":")[1][:12] for d in m]
    assert titles(root) == [f"atom/app:tmp pushed {short[0]}", f"atom/app:1.0 moved to {short[1]}",
                            f"atom/app:1.0 pushed {short[0]}"]
    first = root.find("a:entry", NS)
    assert first.find("a:link", NS).get("href") == f"http://localhost/v2/atom/app/manifests/{m[0][1]}"
    assert root.find("a:updated", NS).text == first.find("a:updated", NS).text
    with_deletes = parse(client.get("/v2/atom/app/_regext/feed.atom?deleted=true&n=2"))
    assert titles(with_deletes)[0].startswith("atom/app:tmp deleted, was")
    assert len(titles(with_deletes)) == 2


def test_entry_ids_are_the_same_in_both_feeds_and_conditional(client):
    make_image(client, "g/one", tag="1")
    make_image(client, "g/two", tag="1")
    make_image(client, "h/three", tag="1")
    across = parse(client.get("/v2/_regext/feed.atom?glob=g/*"))
    assert titles(across)[0].startswith("g/two:1 pushed") and len(titles(across)) == 2
    single = parse(client.get("/v2/g/two/_regext/feed.atom"))
    assert single.find("a:entry/a:id", NS).text == across.find("a:entry/a:id", NS).text
    etag = client.get("/v2/_regext/feed.atom?glob=g/*").headers["ETag"]
    assert client.get("/v2/_regext/feed.atom?glob=g/*", headers={"If-None-Match": etag}).status_code == 304


def test_unknown_repository_and_bad_glob(client):
    assert_error(client.get("/v2/never/pushed/_regext/feed.atom"), 404, "NAME_UNKNOWN")
    assert_error(client.get("/v2/_regext/feed.atom?glob=a[b"), 400, "UNSUPPORTED")


def test_query_text_is_escaped(client):
    make_image(client, "esc/app", tag="a_b-c.d")
    root = parse(client.get("/v2/_regext/feed.atom?prefix=%3C%26%22%3E]]%3E&n=1"))
    assert titles(root) == []
    assert root.find("a:title", NS).text == 'tag updates of prefix=<&">]]>'
    assert root.find("a:link", NS).get("href").startswith("http://localhost/v2/_regext/feed.atom?prefix=")


def test_characters_xml_cannot_carry_are_dropped(client):
    """Found by tests/fuzz: a NUL in the query made the self link invalid XML."""
    root = parse(client.get("/v2/_regext/feed.atom?prefix=a%00b%1Fc&x=%00"))
    assert root.find("a:title", NS).text == "tag updates of prefix=abc"
