"""The update feed under bad input: cursors altered, foreign or made up; 10,000 repositories; globs
matching everything; a wait of a day; watch lists that do not exist. Each is a clear OCI error (or a
bounded answer), never a 500 or an unbounded request."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.feed_helpers import app_with, cursor_now, manifests, tag, updates
from tests.support.oci_client import assert_error


def error_detail(resp) -> dict:
    return assert_error(resp, resp.status_code, "UNSUPPORTED")["errors"][0].get("detail") or {}


def test_altered_cursor_is_refused(client):
    cursor = cursor_now(client)
    for i in (2, 10, 30, len(cursor) - 3):
        bad = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:]
        detail = error_detail(updates(client, 400, cursor=bad))
        assert detail["parameter"] == "cursor" and detail["reason"] in ("cursor-invalid", "cursor-foreign")


def test_cursor_of_another_registry_is_named_as_such(client, settings, tmp_path):
    other = create_app(load_settings(data={"storage": {"root": str(tmp_path / "other")},
                                           "redis": {"url": settings.redis.url,
                                                     "key_prefix": settings.redis.key_prefix + "o"}},
                                     environ={}))
    foreign = cursor_now(other.test_client())
    resp = updates(client, 400, cursor=foreign)
    assert error_detail(resp)["reason"] == "cursor-foreign"
    assert "another registry" in resp.json["errors"][0]["message"]


@pytest.mark.parametrize("cursor", ["x", "0", "%%%", "A" * 66, "A" * 5000, "eyJ2IjoxLCJwIjoiMSJ9"])
def test_made_up_cursors(client, cursor):
    assert error_detail(updates(client, 400, cursor=cursor))["reason"] == "cursor-invalid"


def test_ten_thousand_repositories_are_refused_before_any_work(client):
    query = "&".join(f"repository=r{i}" for i in range(10_000))
    started = time.perf_counter()
    resp = client.get(f"/v2/_regext/updates?{query}")
    assert resp.status_code == 400 and "POST" in resp.json["errors"][0]["message"]
    assert error_detail(resp)["parameter"] == "repository"
    assert time.perf_counter() - started < 2
    posted = client.post("/v2/_regext/updates", json={"repositories": [f"r{i}" for i in range(10_000)]})
    assert posted.status_code == 400 and error_detail(posted)["parameter"] == "repository"


def test_oversized_post_body_is_refused(client):
    resp = client.post("/v2/_regext/updates", data=b"{" + b" " * 400_000 + b"}", content_type="application/json")
    assert resp.status_code == 400 and error_detail(resp)["parameter"] == "body"


@pytest.mark.parametrize("params, parameter", [
    ({"repository": "UPPER/case"}, "repository"),
    ({"repository": "a" * 300}, "repository"),
    ({"glob": "a[b]"}, "glob"),
    ({"glob": "*" * 300}, "glob"),
    ({"prefix": "p" * 300}, "prefix"),
    ({"watch": "x", "repository": "a"}, "watch"),
    ({"wait": "-1"}, "wait"),
    ({"wait": "soon"}, "wait"),
    ({"n": "1e3"}, "n"),
])
def test_bad_parameters(client, params, parameter):
    cursor = cursor_now(client)
    detail = error_detail(updates(client, 400, cursor=cursor, **params))
    assert detail["parameter"] == parameter


def test_unknown_watch_list_is_404(client):
    resp = updates(client, 404, watch="0" * 32)
    assert error_detail(resp)["reason"] == "watch-unknown" and "POST" in resp.json["errors"][0]["message"]
    assert updates(client, 404, watch="../../etc").status_code == 404


def test_glob_matching_everything_is_bounded_by_scan_max(settings):
    client = app_with(settings, scan_max=20, page_max=5).test_client()
    cursor = cursor_now(client)
    m = manifests(client, "all/app", 1)
    for i in range(30):
        tag(client, "all/app", f"t{i}", m[0])
    resp = updates(client, cursor=cursor, glob="**", n=100000)
    assert len(resp.json["events"]) == 5 and resp.json["more"] is True


def test_a_wait_of_a_day_is_cut_to_wait_max(settings):
    client = app_with(settings, wait_max_seconds=1).test_client()
    cursor = cursor_now(client, repository="quiet/app")
    started = time.monotonic()
    resp = updates(client, cursor=cursor, repository="quiet/app", wait=86400)
    assert 0.9 < time.monotonic() - started < 5
    assert resp.json == {"events": [], "next": cursor, "more": False}


def test_n_zero_and_huge_are_clamped(settings):
    client = app_with(settings, page_max=3).test_client()
    cursor = cursor_now(client)
    m = manifests(client, "clamp/app", 1)
    for i in range(5):
        tag(client, "clamp/app", f"t{i}", m[0])
    assert len(updates(client, cursor=cursor, n=0).json["events"]) == 1
    assert len(updates(client, cursor=cursor, n=10**30).json["events"]) == 3


def test_internal_parameters_only_shorten_a_request(client):
    cursor = cursor_now(client, repository="q/app")
    started = time.monotonic()
    resp = client.get(f"/v2/_regext/updates?repository=q/app&cursor={quote(cursor)}&wait=30&_until=1&_hop=99")
    assert resp.status_code == 200 and time.monotonic() - started < 2
