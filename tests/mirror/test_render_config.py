"""Rendering (text, JSON, escaped self-contained HTML) and the ``[mirror]`` configuration section."""
from __future__ import annotations

import json

import pytest

from registry_ext.config import ConfigError, load_settings
from registry_ext.mirror.diff import Listing, Report, TagInfo, diff_repo
from registry_ext.mirror.render import to_html, to_json, to_text

D1, D2 = (f"sha256:{c * 64}" for c in "12")
EVIL = '<script>alert("x")</script>'


def report() -> Report:
    a = Listing("app", {"same": TagInfo(D1), EVIL: TagInfo(D1), "moved": TagInfo(D1),
                        f"sha256-{'7' * 64}.sig": TagInfo(D2)})
    b = Listing("app", {"same": TagInfo(D1), "moved": TagInfo(D2)})
    broken = diff_repo(Listing("lib"), Listing("lib", error="GET /v2/lib/tags/list: HTTP 500 failed"))
    return Report("local", "http://127.0.0.1:1", [diff_repo(a, b), broken], seconds=0.5)


def test_text_table_and_summary():
    text = to_text(report())
    assert "app: DIFFERS - 1 only in A, 0 only in B, 1 changed, 1 identical, 1 signature differences" in text
    assert "  signature only in A  sha256-777777777777….sig" in text
    assert "orphaned in A" in text
    assert "lib: ERROR" in text and "error: B: GET /v2/lib/tags/list: HTTP 500 failed" in text
    assert text.rstrip().splitlines()[-1].startswith("ERROR: 2 repositories, 1 only in A")


def test_json_round_trips_with_counts():
    doc = json.loads(to_json(report()))
    assert doc["status"] == "error" and doc["exit_code"] == 2
    assert doc["counts"]["only_a"] == 1 and doc["counts"]["errors"] == 1
    assert [r["status"] for r in doc["repositories"]] == ["differs", "error"]


def test_html_is_self_contained_and_escaped():
    page = to_html(report())
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "href=" not in page


@pytest.mark.parametrize("mirror, message", [
    ({"remotes": {"up": {"url": "ftp://x"}}}, "mirror.remotes.up.url"),
    ({"remotes": {"up": {"url": "http://x", "token": "t"}}}, "unknown key mirror.remotes.up.token"),
    ({"remotes": {"up": {"url": "http://x", "timeout": 0}}}, "mirror.remotes.up.timeout"),
    ({"remotes": {"up": {"url": "http://x", "realm": "auth.example/token"}}}, "mirror.remotes.up.realm"),
    ({"remotes": {"up": {"url": "http://x", "realm": 7}}}, "mirror.remotes.up.realm: wrong type int"),
    ({"remotes": {"Up": {"url": "http://x"}}}, "mirror.remotes.Up"),
    ({"remotes": {"up": "http://x"}}, "must be a table"),
    ({"cache_seconds": -1}, "mirror.cache_seconds"),
    ({"other": 1}, "unknown key mirror.other"),
])
def test_mirror_config_is_validated(mirror, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(data={"mirror": mirror}, environ={})


def test_mirror_config_defaults_and_values():
    assert load_settings(environ={}).mirror.remotes == {}
    settings = load_settings(data={"mirror": {"remotes": {"up": {"url": "https://ghcr.io", "timeout": 5}}}},
                             environ={})
    assert settings.mirror.remotes["up"]["timeout"] == 5 and settings.mirror.cache_seconds == 5
