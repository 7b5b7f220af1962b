"""The UI's upstream status of the pull-through mirror, against a real upstream (Debian docker-registry).

An image is pulled through the mirror (manifest and both blobs, ``?ns=docker.io``); the mirror page then
shows the upstream's cached repository, tag, size and last answer. With the upstream stopped and a TTL of
0 the next pull revalidates, fails and is served stale: the page shows the last error, its time and kind,
and never the configured password.
"""
from __future__ import annotations

import re

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from registry_ext.services import mirror_status
from tests.support.auth_helpers import client_for, make_app
from tests.support.e2e_mirror_seed import CONFIG, LAYER, image
from tests.support.flask_client import BufferedClient
from tests.support.mirror_upstreams import REPO, Front, start_upstreams
from tests.support.oci_client import push_blob, put_manifest_ok, sha256_digest
from tests.ui.test_access import log_in

SECRET = "Sup3r-Secret-Pw"
FAST = {"timeout": 5, "max_retries": 0, "retry_delay": 0.05}


@pytest.fixture
def upstream():
    started = start_upstreams(1)[0]
    try:
        yield started
    finally:
        started.server.stop()


def table(url: str, **extra) -> dict:
    return {"hosts": ["docker.io", "index.docker.io"], "urls": [url], "username": "robot", "password": SECRET,
            "manifest_ttl": 0, **FAST, **extra}


def text(resp, status: int = 200) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)[:800]
    return resp.get_data(as_text=True)


def fact(body: str, term: str) -> str:
    """The text of ``<dd>`` after ``<dt>term</dt>``, tags removed."""
    found = re.search(rf"<dt>{term}</dt><dd>(.*?)</dd>", body, re.S)
    assert found, f"no {term} in {body[:2000]}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def pull(client, upstream) -> None:
    resp = client.get(f"/v2/{REPO}/manifests/latest?ns=docker.io")
    assert resp.status_code == 200 and resp.data == upstream.image.manifest
    for blob in (upstream.image.config, upstream.image.layer):
        resp = client.get(f"/v2/{REPO}/blobs/{sha256_digest(blob)}?ns=docker.io")
        assert resp.status_code == 200 and resp.data == blob


def test_the_page_shows_the_cache_then_the_last_error_without_secrets(settings, upstream):
    app = create_app(replace(settings, "proxy", upstreams={"hub": table(upstream.url)}, default_upstream="hub"))
    app.test_client_class = BufferedClient
    client = app.test_client()
    before = text(client.get("/ui/mirror"))
    assert fact(before, "Cached repositories") == "0" and fact(before, "Last answer") == "–"
    pull(client, upstream)

    body = text(client.get("/ui/mirror"))
    section = body.split('id="upstreams-h"', 1)[1].split('id="remotes-h"', 1)[0]
    assert '<a href="/ui/mirror/upstream/hub">hub</a>' in section
    assert fact(section, "Answers for") == "docker.io, index.docker.io default upstream"
    assert fact(section, "URLs") == upstream.url and fact(section, "Manifest TTL") == "0 s"
    assert fact(section, "Cached repositories") == "1" and fact(section, "Cached tags") == "1"
    size = len(upstream.image.config) + len(upstream.image.layer)
    assert size < 1000 and fact(section, "Cache size") == f"{size} B (2 blobs)"
    assert re.fullmatch(r"oldest \d{4}-\d\d-\d\d \d\d:\d\d UTC, newest \d{4}-\d\d-\d\d \d\d:\d\d UTC",
                        fact(section, "Tags last checked"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", fact(section, "Last answer"))
    assert fact(section, "Last error") == "none" and fact(section, "Errors") == "0"

    detail = text(client.get("/ui/mirror/upstream/hub"))
    row = re.search(r"<tr>\s*<td><a href=\"/ui/repo/hub/library/app\">hub/library/app</a></td>\s*"
                    r"<td><code>library/app</code></td>\s*<td class=\"num\">1</td>\s*<td class=\"num\">1</td>", detail)
    assert row, detail

    upstream.server.stop()
    stale = client.get(f"/v2/{REPO}/manifests/latest?ns=docker.io")  # TTL 0: asks the upstream, which is down
    assert stale.status_code == 200 and stale.headers["X-Regext-Mirror"] == "stale"
    body = text(client.get("/ui/mirror"))
    error = fact(body, "Last error")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC: unavailable — ", error), error
    assert re.search(r'<span class="error"><time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z"', body)
    assert re.fullmatch(r"1 \(1 since \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", fact(body, "Errors"))
    assert fact(body, "Cached repositories") == "1"  # the cache is still there
    for page in (body, text(client.get("/ui/mirror/upstream/hub"))):
        assert SECRET not in page and "robot" not in page


def test_a_404_is_an_answer_429_and_wrong_bytes_are_errors_with_their_kind(settings, upstream):
    front = Front(upstream.url)
    try:
        app = create_app(replace(settings, "proxy", upstreams={"hub": table(front.url)}))
        client = app.test_client()
        assert client.get(f"/v2/{REPO}/manifests/sha256:{'0' * 64}?ns=docker.io").status_code == 404
        body = text(client.get("/ui/mirror"))
        assert fact(body, "Last error") == "none" and fact(body, "Last answer") != "–"
        front.mode = "429"
        assert client.get(f"/v2/{REPO}/manifests/latest?ns=docker.io").status_code == 429
        assert re.fullmatch(r".* UTC: unavailable, HTTP 429 — .+", fact(text(client.get("/ui/mirror")), "Last error"))
        front.mode = "corrupt"
        assert client.get(f"/v2/{REPO}/manifests/latest?ns=docker.io").status_code == 502
        error = fact(text(client.get("/ui/mirror")), "Last error")
        assert re.fullmatch(r".* UTC: refused — manifest digest mismatch: .+", error), error
        assert fact(text(client.get("/ui/mirror")), "Errors").startswith("2 (2 since ")
    finally:
        front.stop()


def test_unknown_upstream_and_no_upstreams(settings, upstream):
    app = create_app(replace(settings, "proxy", upstreams={"hub": table(upstream.url)}))
    assert "NAME_UNKNOWN" in text(app.test_client().get("/ui/mirror/upstream/nope"), 404)
    body = text(create_app(settings).test_client().get("/ui/mirror"))
    assert "No upstreams are configured" in body


def test_under_access_control_anonymous_sees_counts_but_no_urls_or_reasons(settings, tmp_path, upstream):
    # RULES let anonymous pull public/**: the upstream named "public" caches into public/...
    app = make_app(replace(settings, "proxy", upstreams={"public": table(upstream.url), "hub": table(upstream.url,
                   hosts=["quay.io"])}), tmp_path)
    anonymous = client_for(app)
    pull(anonymous, upstream)
    assert anonymous.get(f"/v2/{REPO}/manifests/latest?ns=quay.io").status_code == 401  # hub/...: not for anonymous
    upstream.server.stop()
    assert anonymous.get(f"/v2/{REPO}/manifests/latest?ns=docker.io").status_code == 200  # stale
    body = text(anonymous.get("/ui/mirror"))
    public = body.split('id="upstream-public"', 1)[1]
    assert fact(public, "Cached repositories") == "1" and fact(public, "Cached tags") == "1"
    assert "<dt>URLs</dt>" not in body and upstream.url not in body
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC: unavailable", fact(public, "Last error"))
    assert 'href="/ui/repo/public/library/app"' in text(anonymous.get("/ui/mirror/upstream/public"))
    assert "Nothing cached" in text(anonymous.get("/ui/mirror/upstream/hub"))
    alice = client_for(app)
    log_in(alice, "alice")
    body = text(alice.get("/ui/mirror"))
    assert fact(body.split('id="upstream-public"', 1)[1], "URLs") == upstream.url
    assert "unavailable — " in body and SECRET not in body


def test_the_upstream_page_pages_and_the_size_counts_each_blob_once(settings, upstream, monkeypatch):
    # allow_push lets the test fill the cache namespace directly: three repositories sharing one config blob
    app = create_app(replace(settings, "proxy", upstreams={"hub": table(upstream.url, allow_push=True)}))
    app.test_client_class = BufferedClient
    client = app.test_client()
    for name in ("hub/a", "hub/b", "hub/c"):
        push_blob(client, name, CONFIG)
        push_blob(client, name, LAYER)
        put_manifest_ok(client, name, "v1", *image(name))
    monkeypatch.setattr(mirror_status, "REPOS_PER_PAGE", 2)
    first = text(client.get("/ui/mirror/upstream/hub"))
    assert re.findall(r'<td><a href="/ui/repo/([^"]+)">', first) == ["hub/a", "hub/b"]
    assert 'href="/ui/mirror/upstream/hub?after=hub/b"' in first
    second = text(client.get("/ui/mirror/upstream/hub?after=hub/b"))
    assert re.findall(r'<td><a href="/ui/repo/([^"]+)">', second) == ["hub/c"] and 'rel="next"' not in second
    assert fact(first, "Cached repositories") == "3" and fact(first, "Cached tags") == "3"
    assert fact(first, "Cache size") == f"{len(CONFIG) + len(LAYER)} B (2 blobs)"
    assert fact(first, "Tags last checked") == "never"  # pushed, never confirmed by the upstream
    monkeypatch.setattr(mirror_status, "SIZE_SCAN", 3)  # the scan stops: figures are a lower bound
    assert fact(text(client.get("/ui/mirror")), "Cache size").startswith("at least ")
