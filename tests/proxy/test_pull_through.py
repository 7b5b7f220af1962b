"""Manifests and tag lists through the mirror, against real upstreams (Debian docker-registry).

Two upstreams hold different images under the same name ``library/app``; the mirror must keep them
apart (``ns`` and path prefix), serve its cache with an upstream stopped, follow a moved tag after the
TTL, refuse bytes that do not match their digest, pass 429s on, and refuse writes.
"""
from __future__ import annotations

import pytest

from registry_ext.config import replace
from tests.support.auth_helpers import basic, client_for, make_app
from tests.support.e2e_mirror_seed import OCI_INDEX, Pusher, index
from tests.support.mirror_upstreams import mirror_app, REPO, Front, make_image, push, start_upstreams
from tests.support.oci_client import assert_error, push_blob, sha256_digest
from tests.support.servers import free_port

FAST = {"timeout": 5, "max_retries": 1, "retry_delay": 0.05}


@pytest.fixture(scope="module")
def upstreams():
    started = start_upstreams(2)
    try:
        yield started
    finally:
        for upstream in started:
            upstream.server.stop()


def mirror(settings, **upstreams):
    app = mirror_app(settings, upstreams)
    return app.test_client()


def table(url: str, host: str, **extra) -> dict:
    return {"hosts": [host], "urls": [url], **FAST, **extra}


@pytest.fixture
def client(settings, upstreams):
    return mirror(settings, ua=table(upstreams[0].url, "a.example"), ub=table(upstreams[1].url, "b.example"))


def test_each_ns_gets_its_own_upstreams_bytes(client, upstreams):
    for ns, upstream in (("a.example", upstreams[0]), ("b.example", upstreams[1])):
        resp = client.get(f"/v2/{REPO}/manifests/latest?ns={ns}")
        assert resp.status_code == 200, resp.data
        assert resp.data == upstream.image.manifest
        assert resp.headers["Docker-Content-Digest"] == upstream.image.digest
        assert resp.headers["OCI-Namespace"] == ns and resp.content_type == upstream.image.media_type
    assert upstreams[0].image.digest != upstreams[1].image.digest
    # stored per upstream: the cache namespaces are ordinary local repositories
    for local, upstream in (("ua", upstreams[0]), ("ub", upstreams[1])):
        resp = client.get(f"/v2/{local}/{REPO}/manifests/latest")
        assert resp.status_code == 200 and resp.data == upstream.image.manifest
        assert client.get(f"/v2/{local}/{REPO}/tags/list").json == {"name": f"{local}/{REPO}", "tags": ["latest"]}


def test_a_host_path_prefix_routes_like_ns(client, upstreams):
    resp = client.get(f"/v2/b.example/{REPO}/manifests/latest")
    assert resp.status_code == 200 and resp.data == upstreams[1].image.manifest
    assert resp.headers["OCI-Namespace"] == "b.example"
    head = client.head(f"/v2/a.example/{REPO}/manifests/{upstreams[0].image.digest}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(upstreams[0].image.manifest))


def test_by_digest_fetches_only_what_is_asked(client, upstreams):
    digest = upstreams[0].image.digest
    resp = client.get(f"/v2/{REPO}/manifests/{digest}?ns=a.example")
    assert resp.status_code == 200 and resp.data == upstreams[0].image.manifest
    assert client.get(f"/v2/ua/{REPO}/tags/list").json["tags"] == []  # no tag was asked for
    assert_error(client.get(f"/v2/{REPO}/manifests/sha256:{'0' * 64}?ns=a.example"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{REPO}/manifests/missing?ns=a.example"), 404, "MANIFEST_UNKNOWN")


def test_unknown_and_malformed_ns(client):
    resp = client.get(f"/v2/{REPO}/manifests/latest?ns=ghcr.io")
    assert_error(resp, 404, "NAME_UNKNOWN")
    for ns in ("a.example:5000", "http://a.example", "u@a.example", "a example", "a.example/x"):
        assert_error(client.get(f"/v2/{REPO}/manifests/latest", query_string={"ns": ns}), 400, "NAME_INVALID")


def test_pushes_and_deletes_are_refused(client, upstreams):
    image = make_image("pushed")
    for path in (f"/v2/{REPO}/manifests/latest?ns=a.example", f"/v2/a.example/{REPO}/manifests/latest",
                 f"/v2/ua/{REPO}/manifests/latest"):
        resp = client.put(path, data=image.manifest, headers={"Content-Type": image.media_type})
        assert_error(resp, 403, "DENIED")
    assert_error(client.post(f"/v2/a.example/{REPO}/blobs/uploads/"), 403, "DENIED")
    assert_error(client.delete(f"/v2/{REPO}/manifests/latest?ns=a.example"), 403, "DENIED")


def test_tags_list_comes_from_the_upstream_then_the_cache(settings):
    upstream = start_upstreams(1, prefix="tags")[0]
    try:
        push(upstream.url, REPO, "v2", make_image("v2"))
        client = mirror(settings, solo=table(upstream.url, "solo.example"))
        resp = client.get(f"/v2/{REPO}/tags/list?ns=solo.example")
        assert resp.status_code == 200 and resp.json == {"name": REPO, "tags": ["latest", "v2"]}
        resp = client.get(f"/v2/{REPO}/tags/list?ns=solo.example&n=1")
        assert resp.json["tags"] == ["latest"]
        assert resp.headers["Link"] == f'</v2/{REPO}/tags/list?n=1&last=latest&ns=solo.example>; rel="next"'
        assert client.get(f"/v2/{REPO}/manifests/v2?ns=solo.example").status_code == 200
    finally:
        upstream.server.stop()
    resp = client.get(f"/v2/{REPO}/tags/list?ns=solo.example")
    assert resp.status_code == 200 and resp.json["tags"] == ["v2"]
    assert resp.headers["X-Regext-Mirror"] == "stale"


def test_a_cached_tag_is_served_with_the_upstream_stopped(settings):
    upstream = start_upstreams(1, prefix="stop")[0]
    client = mirror(settings, gone=table(upstream.url, "gone.example", manifest_ttl=0))
    try:
        first = client.get(f"/v2/{REPO}/manifests/latest?ns=gone.example")
        assert first.status_code == 200 and "X-Regext-Mirror" not in first.headers
    finally:
        upstream.server.stop()
    resp = client.get(f"/v2/{REPO}/manifests/latest?ns=gone.example")
    assert resp.status_code == 200 and resp.data == upstream.image.manifest
    assert resp.headers["X-Regext-Mirror"] == "stale" and resp.headers["Warning"] == '110 - "Response is Stale"'
    resp = client.get(f"/v2/{REPO}/manifests/{upstream.image.digest}?ns=gone.example")
    assert resp.status_code == 200 and "X-Regext-Mirror" not in resp.headers  # by digest: never stale
    resp = client.get(f"/v2/{REPO}/manifests/other?ns=gone.example")
    assert_error(resp, 503, "UNSUPPORTED")
    assert resp.headers["Retry-After"] == "5"


def test_after_the_ttl_a_moved_tag_is_followed_and_history_shows_it(settings):
    upstream = start_upstreams(1, prefix="move")[0]
    try:
        client = mirror(settings, mv=table(upstream.url, "mv.example", manifest_ttl=0))
        before = client.get(f"/v2/{REPO}/manifests/latest?ns=mv.example")
        assert before.headers["Docker-Content-Digest"] == upstream.image.digest
        moved = make_image("moved")
        push(upstream.url, REPO, "latest", moved)
        after = client.get(f"/v2/{REPO}/manifests/latest?ns=mv.example")
        assert after.status_code == 200 and after.data == moved.manifest
        history = client.get(f"/v2/{REPO}/_oci/tag-history/latest?ns=mv.example")
        assert history.status_code == 200, history.data
        assert [d["digest"] for d in history.json["manifests"]] == [moved.digest, upstream.image.digest]
    finally:
        upstream.server.stop()


def test_within_the_ttl_the_upstream_is_not_asked(settings, upstreams):
    front = Front(upstreams[0].url)
    try:
        client = mirror(settings, ft=table(front.url, "ft.example", manifest_ttl=3600))
        assert client.get(f"/v2/{REPO}/manifests/latest?ns=ft.example").status_code == 200
        asked = len(front.seen)
        assert client.get(f"/v2/{REPO}/manifests/latest?ns=ft.example").status_code == 200
        assert len(front.seen) == asked
    finally:
        front.stop()


def test_a_digest_mismatch_is_refused_and_nothing_is_stored(settings, upstreams):
    front = Front(upstreams[0].url)
    front.mode = "corrupt"
    try:
        client = mirror(settings, liar=table(front.url, "liar.example"))
        for reference in ("latest", upstreams[0].image.digest):
            resp = client.get(f"/v2/{REPO}/manifests/{reference}?ns=liar.example")
            assert_error(resp, 502, "UNSUPPORTED")
            assert "digest mismatch" in resp.json["errors"][0]["detail"]["reason"]
        assert_error(client.get(f"/v2/liar/{REPO}/manifests/{upstreams[0].image.digest}"), 404, "NAME_UNKNOWN")
    finally:
        front.stop()


def test_429_is_passed_on_with_retry_after_or_answered_from_the_cache(settings, upstreams):
    front = Front(upstreams[1].url)
    try:
        client = mirror(settings, busy=table(front.url, "busy.example", manifest_ttl=0))
        assert client.get(f"/v2/{REPO}/manifests/latest?ns=busy.example").status_code == 200
        front.mode = "429"
        resp = client.get(f"/v2/{REPO}/manifests/latest?ns=busy.example")
        assert resp.status_code == 200 and resp.headers["X-Regext-Mirror"] == "stale"
        resp = client.get(f"/v2/{REPO}/manifests/v9?ns=busy.example")
        assert_error(resp, 429, "TOOMANYREQUESTS")
        assert resp.headers["Retry-After"] == "30"
    finally:
        front.stop()


def test_local_repositories_are_unchanged(client):
    image = make_image("local")
    push_blob(client, "mine/app", image.config)
    push_blob(client, "mine/app", image.layer)
    resp = client.put("/v2/mine/app/manifests/v1", data=image.manifest, headers={"Content-Type": image.media_type})
    assert resp.status_code == 201
    resp = client.get("/v2/mine/app/manifests/v1")
    assert resp.status_code == 200 and "OCI-Namespace" not in resp.headers


def test_head_of_an_uncached_blob_asks_the_upstream_and_fetches_nothing(client, upstreams):
    layer = upstreams[0].image.layer
    digest = sha256_digest(layer)
    resp = client.head(f"/v2/{REPO}/blobs/{digest}?ns=a.example")
    assert resp.status_code == 200 and resp.headers["Content-Length"] == str(len(layer))
    assert resp.headers["Docker-Content-Digest"] == digest and resp.headers["OCI-Namespace"] == "a.example"
    assert client.head(f"/v2/ua/{REPO}/blobs/{digest}").status_code == 404  # nothing stored
    missing = f"sha256:{'1' * 64}"
    assert client.head(f"/v2/{REPO}/blobs/{missing}?ns=a.example").status_code == 404


def test_a_blob_stored_here_is_linked_once_the_upstream_has_it(client, upstreams):
    layer = upstreams[1].image.layer
    push_blob(client, "mine/other", layer)
    resp = client.get(f"/v2/b.example/{REPO}/blobs/{sha256_digest(layer)}")
    assert resp.status_code == 200 and resp.data == layer
    assert client.get(f"/v2/ub/{REPO}/blobs/{sha256_digest(layer)}").data == layer  # linked in the cache
    private = b"a private blob of another repository"
    push_blob(client, "mine/other", private)
    resp = client.get(f"/v2/b.example/{REPO}/blobs/{sha256_digest(private)}")
    assert_error(resp, 404, "BLOB_UNKNOWN")  # the upstream does not have it: not linked, not served
    assert client.head(f"/v2/ub/{REPO}/blobs/{sha256_digest(private)}").status_code == 404


def test_pulls_need_pull_on_the_local_repository(settings, upstreams, tmp_path):
    """auth rules name the local repositories: public/** is anonymous (support/auth_helpers.RULES)."""
    proxied = replace(settings, "proxy", upstreams={"public": table(upstreams[0].url, "a.example"),
                                                    "ub": table(upstreams[1].url, "b.example")})
    app = make_app(proxied, tmp_path)
    anonymous, alice = client_for(app), client_for(app, basic("alice"))
    resp = anonymous.get(f"/v2/{REPO}/manifests/latest?ns=a.example")
    assert resp.status_code == 200 and resp.data == upstreams[0].image.manifest
    denied = anonymous.get(f"/v2/{REPO}/manifests/latest?ns=b.example")
    detail = assert_error(denied, 401, "UNAUTHORIZED")["errors"][0]["detail"]
    assert detail == [{"Type": "repository", "Name": f"ub/{REPO}", "Action": "pull"}]
    assert alice.get(f"/v2/{REPO}/manifests/latest?ns=b.example").data == upstreams[1].image.manifest


def test_an_index_and_then_its_child_by_digest(client, upstreams):
    child = upstreams[0].image
    index_body, index_type = index([child.manifest])
    push(upstreams[0].url, REPO, None, child)
    Pusher(upstreams[0].url).manifest(REPO, "multi", (index_body, index_type))
    resp = client.get(f"/v2/{REPO}/manifests/multi?ns=a.example")
    assert resp.status_code == 200 and resp.data == index_body and resp.content_type == index_type
    resp = client.get(f"/v2/{REPO}/manifests/{child.digest}?ns=a.example")
    assert resp.status_code == 200 and resp.data == child.manifest
    listed = client.get(f"/v2/ua/{REPO}/_oci/tag-history/multi").json["manifests"]
    assert [d["digest"] for d in listed] == [sha256_digest(index_body)]


def test_the_enriched_listing_shows_mirrored_tags(client, upstreams):
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=b.example").status_code == 200
    resp = client.get(f"/v2/{REPO}/tags/list?ns=b.example", headers={"Accept": OCI_INDEX})
    assert resp.status_code == 200, resp.data
    assert [m["digest"] for m in resp.json["manifests"]] == [upstreams[1].image.digest]
    assert resp.headers["OCI-Namespace"] == "b.example"


def test_failover_to_the_next_url(settings, upstreams):
    dead = f"http://127.0.0.1:{free_port()}"
    client = mirror(settings, fo={"hosts": ["fo.example"], "urls": [dead, upstreams[1].url], **FAST})
    resp = client.get(f"/v2/{REPO}/manifests/latest?ns=fo.example")
    assert resp.status_code == 200 and resp.data == upstreams[1].image.manifest


def test_library_prefix_and_unknown_repositories(settings, upstreams):
    """(upstreams[1]: upstreams[0] gains a tag in test_an_index_and_then_its_child_by_digest)"""
    client = mirror(settings, hub=table(upstreams[1].url, "docker.io", library_prefix=True))
    resp = client.get("/v2/app/manifests/latest?ns=docker.io")
    assert resp.status_code == 200 and resp.data == upstreams[1].image.manifest
    assert client.get(f"/v2/hub/{REPO}/manifests/latest").data == upstreams[1].image.manifest
    assert client.get("/v2/docker.io/app/tags/list").json == {"name": "docker.io/app", "tags": ["latest"]}
    assert_error(client.get("/v2/nothing/here/tags/list?ns=docker.io"), 404, "NAME_UNKNOWN")


def test_an_upstream_slower_than_its_timeout_is_answered_from_the_cache(settings, upstreams):
    front = Front(upstreams[1].url)
    try:
        client = mirror(settings, slow={"hosts": ["slow.example"], "urls": [front.url], "timeout": 1,
                                        "max_retries": 0, "manifest_ttl": 0})
        assert client.get(f"/v2/{REPO}/manifests/latest?ns=slow.example").status_code == 200
        front.mode = "slow"
        resp = client.get(f"/v2/{REPO}/manifests/latest?ns=slow.example")
        assert resp.status_code == 200 and resp.data == upstreams[1].image.manifest
        assert resp.headers["X-Regext-Mirror"] == "stale"
        assert_error(client.get(f"/v2/{REPO}/manifests/v7?ns=slow.example"), 503, "UNSUPPORTED")
    finally:
        front.stop()
