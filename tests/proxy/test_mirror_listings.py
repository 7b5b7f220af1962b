"""Mirrored content in the enriched listings: each tag of an upstream's cache names its upstream and
when the upstream last confirmed it (a real docker-registry upstream)."""
from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.mirror_upstreams import mirror_app, REPO, start_upstreams
from tests.support.oci_client import make_image

FAST = {"timeout": 5, "max_retries": 1, "retry_delay": 0.05}


@pytest.fixture(scope="module")
def upstream():
    (started,) = start_upstreams(1)
    try:
        yield started
    finally:
        started.server.stop()


@pytest.fixture
def client(settings, upstream):
    app = mirror_app(settings, {"ua": {"hosts": ["a.example"], "urls": [upstream.url],
                                                                  **FAST}})
    return app.test_client()


def _ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_cached_tags_name_their_upstream_and_last_confirmation(client, upstream):
    before = int(datetime.now().timestamp() * 1000) - 1
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=a.example").status_code == 200
    after = int(datetime.now().timestamp() * 1000) + 1
    tags = client.get(f"/v2/ua/{REPO}/_regext/tags").json["tags"]
    assert [t["name"] for t in tags] == ["latest"]
    mirror = tags[0]["mirror"]
    assert mirror["upstream"] == "ua" and before <= _ms(mirror["synced"]) <= after
    # the same through the route: the listing of the cache
    routed = client.get(f"/v2/a.example/{REPO}/_regext/tags").json["tags"]
    assert routed[0]["mirror"] == mirror
    # fields= selects it like any field
    only = client.get(f"/v2/ua/{REPO}/_regext/tags?fields=name,mirror").json["tags"]
    assert only == [{"name": "latest", "mirror": mirror}]


def test_manifest_listing_shows_the_latest_confirmation_of_its_tags(client, upstream):
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=a.example").status_code == 200
    tag = client.get(f"/v2/ua/{REPO}/_regext/tags").json["tags"][0]
    manifests = client.get(f"/v2/ua/{REPO}/_regext/manifests").json["manifests"]
    assert [(m["digest"], m["mirror"]) for m in manifests] == [(upstream.image.digest, tag["mirror"])]


def test_a_manifest_pulled_by_digest_only_was_never_synced_by_tag(client, upstream):
    assert client.get(f"/v2/{REPO}/manifests/{upstream.image.digest}?ns=a.example").status_code == 200
    manifests = client.get(f"/v2/ua/{REPO}/_regext/manifests").json["manifests"]
    assert manifests[0]["mirror"] == {"upstream": "ua", "synced": None}


def test_local_repositories_have_no_mirror_object(client):
    make_image(client, "team/app", tag="v1")
    assert "mirror" not in client.get("/v2/team/app/_regext/tags").json["tags"][0]
    assert "mirror" not in client.get("/v2/team/app/_regext/manifests").json["manifests"][0]
