"""The update feed and the Atom feeds under access control: each caller sees the events of the
repositories it may pull, and nothing of the others (not even by naming them)."""
from __future__ import annotations

import pytest

from tests.support.auth_helpers import basic, client_for, make_app
from tests.support.oci_client import assert_error, make_image


@pytest.fixture
def app(settings, tmp_path):
    app = make_app(settings, tmp_path)
    alice = client_for(app, basic("alice"))
    make_image(alice, "public/tools")
    make_image(alice, "ci/app")
    make_image(client_for(app, basic("bob")), "secret/keys")  # only the ops group may push there
    return app


def repositories(resp) -> set[str]:
    assert resp.status_code == 200, resp.get_data()[:300]
    return {event["repository"] for event in resp.json["events"]}


def test_updates_show_only_pullable_repositories(app):
    everything = "/v2/_regext/updates?glob=**&recent=5"
    assert repositories(client_for(app, basic("alice")).get(everything)) == {"public/tools", "ci/app"}
    assert repositories(client_for(app, basic("bob")).get(everything)) == {"public/tools", "secret/keys"}
    assert repositories(client_for(app, basic("robot")).get(everything)) == {"public/tools", "ci/app"}
    assert repositories(client_for(app).get(everything)) == {"public/tools"}


def test_naming_a_repository_does_not_reveal_it(app):
    resp = client_for(app, basic("robot")).get("/v2/_regext/updates?repository=secret/keys&recent=5")
    assert repositories(resp) == set()


def test_atom_feeds_follow_the_rules(app):
    assert client_for(app, basic("bob")).get("/v2/secret/keys/_regext/feed.atom").status_code == 200
    assert_error(client_for(app, basic("robot")).get("/v2/secret/keys/_regext/feed.atom"), 403, "DENIED")
    assert_error(client_for(app).get("/v2/ci/app/_regext/feed.atom"), 401, "UNAUTHORIZED")
    body = client_for(app).get("/v2/_regext/feed.atom?glob=**").get_data(as_text=True)
    assert "public/tools" in body and "secret/keys" not in body and "ci/app" not in body
