"""GET/POST /v2/_regext/updates over the Flask test client: events, order, filters, paging, watch
lists, access control, conditional requests, retention. Bad input: test_feed_bad_input.py."""
from __future__ import annotations

import json

import pytest
from flask import g

from registry_ext import create_app
from tests.support.feed_helpers import app_with, cursor_now, events, manifests, tag, updates
from tests.support.oci_client import link_next, make_image


def test_start_gives_a_cursor_and_no_events(client):
    resp = updates(client, repository="a/b")
    assert resp.json["events"] == [] and resp.json["more"] is False
    assert resp.headers["Link"].endswith(f'cursor={resp.json["next"]}>; rel="next"')
    assert resp.headers["Content-Type"] == "application/json"


def test_push_move_delete_are_events_in_order(client):
    cursor = cursor_now(client, repository="app")
    m = manifests(client, "app", 3)
    d0 = tag(client, "app", "1.0", m[0])
    d1 = tag(client, "app", "1.0", m[1])
    tag(client, "app", "1.0", m[1])       # same digest again: no event
    tag(client, "app", "latest", m[1])
    tag(client, "app", "2.0", m[2])
    assert client.delete("/v2/app/manifests/2.0").status_code == 202
    assert client.delete(f"/v2/app/manifests/{d1}").status_code == 202  # takes 1.0 and latest with it
    resp = updates(client, repository="app", cursor=cursor)
    assert events(resp) == [
        ("app", "1.0", "pushed", d0, None),
        ("app", "1.0", "moved", d1, d0),
        ("app", "latest", "pushed", d1, None),
        ("app", "2.0", "pushed", m[2][1], None),
        ("app", "2.0", "deleted", None, m[2][1]),
        ("app", "1.0", "deleted", None, d1),
        ("app", "latest", "deleted", None, d1),
    ]
    first = resp.json["events"][0]
    assert first["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert first["time"].endswith("Z") and "artifactType" not in first
    assert resp.json["more"] is False
    again = updates(client, repository="app", cursor=resp.json["next"])
    assert again.json["events"] == [] and again.json["next"] == resp.json["next"]


def test_history_and_feed_agree_on_times(client):
    cursor = cursor_now(client)
    made = make_image(client, "hist/app", tag="v1")
    assert client.delete("/v2/hist/app/manifests/v1").status_code == 202
    feed_times = [e["time"] for e in updates(client, cursor=cursor).json["events"]]
    history = client.get("/v2/hist/app/_oci/tag-history/v1").json["manifests"]
    stamps = sorted(d["annotations"]["org.opencontainers.distribution.tag.timestamp"] for d in history)
    assert feed_times == stamps and made["manifest"]


def test_artifact_type_is_carried(client):
    cursor = cursor_now(client)
    made = make_image(client, "art/app", tag="sbom", artifact_type="application/vnd.example.sbom")
    event = updates(client, cursor=cursor).json["events"][0]
    assert event["artifactType"] == "application/vnd.example.sbom" and event["digest"] == made["manifest"]


def test_filters_are_a_union_and_skipped_events_advance_the_cursor(client):
    cursor = cursor_now(client)
    for name in ("team/a", "team/b/c", "lib/x", "other"):
        make_image(client, name, tag="1")
    picked = lambda **f: [e[0] for e in events(updates(client, cursor=cursor, **f))]  # noqa: E731
    assert picked(repository="other") == ["other"]
    assert picked(prefix="team/") == ["team/a", "team/b/c"]
    assert picked(glob="team/*") == ["team/a"]
    assert picked(glob="**/c", repository="lib/x") == ["team/b/c", "lib/x"]
    assert picked() == ["team/a", "team/b/c", "lib/x", "other"]
    skipped = updates(client, cursor=cursor, repository="nothing/here")
    assert skipped.json["events"] == [] and skipped.json["next"] != cursor
    assert updates(client, cursor=skipped.json["next"], repository="other").json["events"] == []


def test_pages_of_n_follow_link(client):
    cursor = cursor_now(client)
    m = manifests(client, "paged", 1)
    for i in range(7):
        tag(client, "paged", f"t{i}", m[0])
    url, seen, pages = f"/v2/_regext/updates?repository=paged&n=3&cursor={cursor}", [], 0
    while True:
        resp = client.get(url)
        pages += 1
        seen += [e["tag"] for e in resp.json["events"]]
        if not resp.json["more"]:
            break
        url = link_next(resp)
        assert "n=3" in url and "repository=paged" in url
    assert seen == [f"t{i}" for i in range(7)] and pages == 3


def test_recent_gives_last_events_per_named_repository_and_of_a_glob(client):
    m = manifests(client, "r/one", 1)
    for i in range(5):
        tag(client, "r/one", f"a{i}", m[0])
    make_image(client, "r/two", tag="x")
    make_image(client, "s/three", tag="y")
    resp = updates(client, repository=["r/one", "r/two", "never/pushed"], recent=2)
    assert [(e["repository"], e["tag"]) for e in resp.json["events"]] == [
        ("r/one", "a3"), ("r/one", "a4"), ("r/two", "x")]
    globbed = updates(client, glob="s/*", repository="r/two", recent=5)
    assert sorted((e["repository"], e["tag"]) for e in globbed.json["events"]) == [("r/two", "x"), ("s/three", "y")]
    # the cursor given with recent events continues right after them
    tag(client, "r/one", "a5", m[0])
    assert [e["tag"] for e in updates(client, repository="r/one", cursor=resp.json["next"]).json["events"]] == ["a5"]


def test_conditional_poll_answers_304_when_nothing_changed(client):
    cursor = cursor_now(client, repository="c/app")
    first = updates(client, repository="c/app", cursor=cursor)
    etag = first.headers["ETag"]
    assert updates(client, 304, {"If-None-Match": etag}, repository="c/app", cursor=cursor).get_data() == b""
    make_image(client, "c/app", tag="1")
    changed = updates(client, 200, {"If-None-Match": etag}, repository="c/app", cursor=cursor)
    assert changed.json["events"] and changed.headers["ETag"] != etag


def test_post_stores_a_watch_list_for_short_polls(client):
    names = [f"w/repo{i}" for i in range(300)]
    resp = client.post("/v2/_regext/updates", json={"repositories": names, "prefix": "zz/"})
    assert resp.status_code == 200, resp.get_data()
    watch, cursor = resp.json["watch"], resp.json["next"]
    assert f"watch={watch}" in resp.headers["Link"]
    make_image(client, "w/repo7", tag="1")
    make_image(client, "w/other", tag="1")
    make_image(client, "zz/top", tag="1")
    poll = updates(client, watch=watch, cursor=cursor)
    assert [e[0] for e in events(poll)] == ["w/repo7", "zz/top"]
    same = client.post("/v2/_regext/updates", json={"prefix": "zz/", "repositories": list(reversed(names))})
    assert same.json["watch"] == watch  # content-addressed


def test_access_control_hides_repositories_the_caller_may_not_pull(settings):
    app = create_app(settings)

    @app.before_request
    def _policy():
        g.regext_may_pull = lambda name: not name.startswith("secret/")

    client = app.test_client()
    cursor = cursor_now(client)
    make_image(client, "secret/app", tag="1")
    make_image(client, "public/app", tag="1")
    assert [e[0] for e in events(updates(client, cursor=cursor))] == ["public/app"]
    assert [e[0] for e in events(updates(client, cursor=cursor, repository="secret/app"))] == []
    recent = updates(client, repository=["secret/app", "public/app"], recent=5).json["events"]
    assert [e["repository"] for e in recent] == ["public/app"]


def test_retention_expiry_is_a_410_with_a_fresh_cursor(settings):
    client = app_with(settings, retention_events=100).test_client()
    m = manifests(client, "ret/app", 2)
    tag(client, "ret/app", "t", m[0])
    old = cursor_now(client)
    for i in range(250):  # the stream keeps >= 100; whole nodes of 100 entries are trimmed
        tag(client, "ret/app", "t", m[(i + 1) % 2])
    resp = updates(client, 410, cursor=old)
    detail = resp.json["errors"][0]["detail"]
    assert detail["reason"] == "cursor-expired" and "retention" in detail["why"]
    assert "resync" in resp.json["errors"][0]["message"]
    assert updates(client, cursor=detail["cursor"]).json["events"] == []
    tag(client, "ret/app", "t2", m[0])
    assert [e["tag"] for e in updates(client, cursor=detail["cursor"]).json["events"]] == ["t2"]


def test_scan_max_bounds_a_poll_and_more_says_continue(settings):
    client = app_with(settings, scan_max=10).test_client()
    cursor = cursor_now(client)
    m = manifests(client, "noise", 1)
    for i in range(25):
        tag(client, "noise", f"n{i}", m[0])
    make_image(client, "signal", tag="s")
    pages, found, url = 0, [], f"/v2/_regext/updates?repository=signal&cursor={cursor}"
    while True:
        resp = client.get(url)
        pages += 1
        found += events(resp)
        if not resp.json["more"]:
            break
        url = link_next(resp)
    assert [e[1] for e in found] == ["s"] and pages == 3


def test_recent_with_a_cursor_is_refused(client):
    cursor = cursor_now(client)
    assert updates(client, 400, cursor=cursor, recent=5).json["errors"][0]["detail"] == {"parameter": "recent"}


def test_disabled_feed_is_404_and_stages_nothing(settings, redis_client):
    client = app_with(settings, enabled=False).test_client()
    assert updates(client, 404).json["errors"][0]["code"] == "UNSUPPORTED"
    make_image(client, "off/app", tag="1")
    assert client.get("/v2/off/app/tags/list").json["tags"] == ["1"]
    assert not redis_client.exists(f"{settings.redis.key_prefix}:repo:{{off/app}}:events")


@pytest.mark.parametrize("body", [b"[]", b"{", b'{"repositories": "a"}', b'{"other": 1}', b'{"glob": 5}',
                                  json.dumps({"repositories": ["BAD NAME"]}).encode()])
def test_bad_post_bodies(client, body):
    resp = client.post("/v2/_regext/updates", data=body, content_type="application/json")
    assert resp.status_code == 400 and resp.json["errors"][0]["code"] == "UNSUPPORTED"
