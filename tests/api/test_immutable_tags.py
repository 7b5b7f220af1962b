"""Immutable tags (issue #16): tags an `immutable_tags` rule covers can be created and pushed again with the
same manifest, never moved or deleted: `403 DENIED` naming the rule, and nothing changes."""
from __future__ import annotations

import pytest

from registry_ext.app import create_app
from registry_ext.config import replace
from tests.support.flask_client import BufferedClient
from tests.support.oci_client import assert_error, make_image, push_manifest, tag_list

NAME = "apps/web"
RELEASE = r"^v?[0-9]+\.[0-9]+\.[0-9]+$"


@pytest.fixture
def client(settings):
    app = create_app(replace(settings, "immutable_tags",
                             rules=[{"repositories": ["apps/**"], "tags": RELEASE}]))
    app.test_client_class = BufferedClient
    return app.test_client()


def digest_of(client, tag: str) -> str:
    return client.head(f"/v2/{NAME}/manifests/{tag}").headers["Docker-Content-Digest"]


def test_moving_a_release_tag_is_denied_and_the_tag_stays(client):
    first = make_image(client, NAME, tag="1.2.3", layers=(b"one",))
    other = make_image(client, NAME, tag="latest", layers=(b"two",))
    resp = push_manifest(client, NAME, "1.2.3", other["body"])
    doc = assert_error(resp, 403, "DENIED")
    error = doc["errors"][0]
    assert error["detail"] == {"tag": "1.2.3", "rule": 1}
    assert error["message"] == ("tag '1.2.3' is immutable and cannot be moved: immutable_tags.rules[1] "
                                f"(tags '{RELEASE}' in apps/**)")
    assert digest_of(client, "1.2.3") == first["manifest"]
    history = client.get(f"/v2/{NAME}/_oci/tag-history/1.2.3").json["manifests"]
    assert [(e["digest"], e["annotations"]["org.opencontainers.distribution.tag.event"]) for e in history] == [
        (first["manifest"], "created")]


def test_pushing_the_same_manifest_again_and_moving_other_tags_is_allowed(client):
    first = make_image(client, NAME, tag="v2.0.0", layers=(b"one",))
    assert push_manifest(client, NAME, "v2.0.0", first["body"]).status_code == 201
    other = make_image(client, NAME, tag="latest", layers=(b"two",))
    assert push_manifest(client, NAME, "latest", first["body"]).status_code == 201
    assert push_manifest(client, NAME, "2.0", other["body"]).status_code == 201
    assert digest_of(client, "latest") == first["manifest"]


def test_a_push_by_digest_with_tag_parameters_cannot_move_one(client):
    make_image(client, NAME, tag="1.0.0", layers=(b"one",))
    other = make_image(client, NAME, tag=None, layers=(b"two",))
    resp = client.put(f"/v2/{NAME}/manifests/{other['manifest']}?tag=edge&tag=1.0.0", data=other["body"],
                      headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert_error(resp, 403, "DENIED")
    assert tag_list(client, NAME) == ["1.0.0"]  # nothing of the refused push was applied


def test_deleting_an_immutable_tag_or_its_manifest_is_denied_even_forced(client):
    image = make_image(client, NAME, tag="3.1.4", layers=(b"pi",))
    doc = assert_error(client.delete(f"/v2/{NAME}/manifests/3.1.4"), 403, "DENIED")
    assert "cannot be deleted" in doc["errors"][0]["message"]
    for query in ("", "?force=true"):
        doc = assert_error(client.delete(f"/v2/{NAME}/manifests/{image['manifest']}{query}"), 403, "DENIED")
        assert doc["errors"][0]["detail"] == {"tag": "3.1.4", "rule": 1}
    assert tag_list(client, NAME) == ["3.1.4"]


def test_tags_outside_the_rule_move_and_delete(client):
    make_image(client, NAME, tag="1.2.3-rc1", layers=(b"rc",))
    other = make_image(client, "base/os", tag="1.2.3", layers=(b"base",))
    moved = make_image(client, "base/os", tag=None, layers=(b"moved",))
    assert push_manifest(client, "base/os", "1.2.3", moved["body"]).status_code == 201
    assert client.delete(f"/v2/base/os/manifests/{other['manifest']}").status_code == 202
    assert client.delete(f"/v2/{NAME}/manifests/1.2.3-rc1").status_code == 202

