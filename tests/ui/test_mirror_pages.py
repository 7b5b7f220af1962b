"""The UI's mirror pages against a real remote: Debian's docker-registry seeded with a known difference.

Here: tags same, changed, onlyhere. The remote: same, changed (other bytes), onlythere. The comparison
page must show exactly that, as counts, as a chart and as rows, and run only for what the caller may pull.
"""
from __future__ import annotations

import re

import pytest

from bench.peer import start_peer
from registry_ext import create_app
from registry_ext.config import replace
from tests.support.auth_helpers import client_for, make_app
from tests.support.e2e_mirror_seed import CONFIG, LAYER, Pusher, digest, image
from tests.support.oci_client import push_blob, put_manifest_ok


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    server = start_peer(data_dir=str(tmp_path_factory.mktemp("ui-peer")))
    remote = Pusher(server.url)
    for blob in (CONFIG, LAYER):
        remote.blob("app", blob)
    for tag, label in (("same", "same"), ("changed", "changed-there"), ("onlythere", "onlythere")):
        remote.manifest("app", tag, image(label))
    try:
        yield server
    finally:
        server.stop()


def seed_here(client) -> dict[str, str]:
    for blob in (CONFIG, LAYER):
        push_blob(client, "app", blob)
    digests = {}
    for tag, label in (("same", "same"), ("changed", "changed-here"), ("onlyhere", "onlyhere")):
        body, media_type = image(label)
        digests[tag] = put_manifest_ok(client, "app", tag, body, media_type)
    return digests


@pytest.fixture
def app(settings, peer):
    return create_app(replace(settings, "mirror", remotes={"peer": {"url": peer.url, "timeout": 20}}))


def text(resp, status: int = 200) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)[:800]
    assert resp.content_type == "text/html; charset=utf-8"
    return resp.get_data(as_text=True)


def test_the_mirror_page_names_the_remotes_and_never_their_urls(app, peer):
    body = text(app.test_client().get("/ui/mirror?name=app"))
    assert "<li><code>peer</code></li>" in body and '<option value="peer">peer</option>' in body
    assert peer.url.split("//")[1] not in body
    assert 'id="name" name="name" value="app"' in body


def test_a_comparison_shows_counts_chart_and_rows(app):
    client = app.test_client()
    here = seed_here(client)
    body = text(client.get("/ui/mirror/diff?name=app&remote=peer"))
    assert ">differs</span></h1>" in body
    chart = re.search(r"<title id=\"chart-t\">([^<]*)</title>", body).group(1)
    assert chart == ("identical: 1; changed: 1; only here: 1; only on the remote: 1; signature differences: 0; "
                     "untagged only here: 0; untagged only on the remote: 0")
    widths = dict(re.findall(r'<rect x="230" y="\d+" width="(\d+)" height="20" class="bar-(\w+)"', body)[i][::-1]
                  for i in range(4))
    assert widths == {"same": "320", "changed": "320", "here": "320", "there": "320"}
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(?:<a [^>]*>)?([^<]*)(?:</a>)?</td><td><code>([^<]*)</code></td>"
                      r"<td><code>([^<]*)</code></td>", body)
    there = digest(image("changed-there")[0])
    assert rows == [("only here", "onlyhere", here["onlyhere"][:19], "-"),
                    ("only on peer", "onlythere", "-", digest(image("onlythere")[0])[:19]),
                    ("changed", "changed", here["changed"][:19], there[:19])]
    assert 'href="/ui/repo/app/_tag/onlyhere"' in body and 'href="/ui/repo/app/_tag/onlythere"' not in body
    assert "1 tags identical." in body


def test_bad_requests_are_pages_with_the_reason(app):
    client = app.test_client()
    seed_here(client)
    assert "choose a remote configured" in text(client.get("/ui/mirror/diff?name=app&remote=nope"), 400)
    assert "NAME_INVALID" in text(client.get("/ui/mirror/diff?name=Bad..Name&remote=peer"), 400)
    assert "NAME_INVALID" in text(client.get("/ui/mirror/diff?name=app&remote=peer&remote_repo=a//b"), 400)


def test_a_repository_the_caller_may_not_pull_is_never_compared(settings, tmp_path, peer):
    app = make_app(replace(settings, "mirror", remotes={"peer": {"url": peer.url, "timeout": 20}}), tmp_path)
    resp = client_for(app).get("/ui/mirror/diff?name=secret/keys&remote=peer")
    assert "NAME_UNKNOWN" in text(resp, 404)


def test_without_remotes_the_page_says_how_to_add_them(settings):
    body = text(create_app(settings).test_client().get("/ui/mirror"))
    assert "No remotes are configured" in body and "<form" not in body.split("<main", 1)[1].split("</main>")[0]
