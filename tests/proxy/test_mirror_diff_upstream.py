"""mirror-diff with a pull-through upstream as the remote, by its configured name, against two real
docker-registry upstreams holding different images under the same name."""
from __future__ import annotations

import pytest

from registry_ext.config import ConfigError
from tests.support.mirror_upstreams import mirror_app, REPO, make_image, push, start_upstreams
from tests.support.oci_client import assert_error, make_image as push_here

FAST = {"timeout": 5, "max_retries": 1, "retry_delay": 0.05}


@pytest.fixture
def upstreams():
    started = start_upstreams(2, prefix="md")
    try:
        yield started
    finally:
        for upstream in started:
            upstream.server.stop()


def mirror(settings, upstreams, **extra):
    tables = {"ua": {"hosts": ["a.example"], "urls": [upstreams[0].url], "allow_push": True, **FAST},
              "ub": {"hosts": ["b.example"], "urls": [upstreams[1].url], "repositories": ["library/*"], **FAST}}
    app = mirror_app(settings, tables, **extra)
    return app.test_client()


def test_a_cache_in_step_with_its_upstream_is_identical(settings, upstreams):
    client = mirror(settings, upstreams)
    for ns in ("a.example", "b.example"):
        assert client.get(f"/v2/{REPO}/manifests/latest?ns={ns}").status_code == 200
    for name in ("ua", "ub"):
        body = client.get(f"/v2/{name}/{REPO}/_regext/mirror-diff?remote={name}").json
        (repo,) = body["repositories"]
        assert (body["b"], repo["repo_a"], repo["repo_b"]) == (name, f"{name}/{REPO}", REPO)
        assert repo["status"] == "identical" and repo["identical"] == 1, repo
        assert repo["mirror"] == {"upstream": name, "missing": [], "stale": [], "gone": [], "not_mirrored": []}
    # the other upstream holds another image under the same name: compared with it, the tag differs
    crossed = client.get(f"/v2/ua/{REPO}/_regext/mirror-diff?remote=ub&remote_repo={REPO}").json
    assert crossed["repositories"][0]["changed"][0]["digest_b"] == upstreams[1].image.digest


def test_missing_stale_and_gone_tags(settings, upstreams):
    client = mirror(settings, upstreams)
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=a.example").status_code == 200
    synced = client.get(f"/v2/ua/{REPO}/_regext/tags").json["tags"][0]["mirror"]["synced"]
    moved = make_image("md-moved")
    push(upstreams[0].url, REPO, "latest", moved)       # the upstream moves latest: the cache is stale
    push(upstreams[0].url, REPO, "v2", make_image("md-v2"))   # a tag the cache does not hold
    push_here(client, f"ua/{REPO}", tag="local-only")   # allow_push: a tag the upstream does not have
    # through the route (prefix): the request names the cache, the upstream's name is the remote
    body = client.get(f"/v2/a.example/{REPO}/_regext/mirror-diff?remote=ua").json
    repo = body["repositories"][0]
    assert body["status"] == "differs" and repo["repo_a"] == f"ua/{REPO}" and repo["repo_b"] == REPO
    assert repo["mirror"] == {"upstream": "ua", "missing": ["v2"], "gone": ["local-only"], "not_mirrored": [],
                              "stale": [{"tag": "latest", "cached": upstreams[0].image.digest,
                                         "upstream": moved.digest, "synced": synced}]}


def test_tags_outside_the_content_rules_are_not_mirrored_rather_than_missing(settings, upstreams):
    tables = {"ua": {"hosts": ["a.example"], "urls": [upstreams[0].url], "tags": ["latest", "v[0-9]+"], **FAST}}
    app = mirror_app(settings, tables)
    client = app.test_client()
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=a.example").status_code == 200
    push(upstreams[0].url, REPO, "v2", make_image("md-rules-v2"))
    push(upstreams[0].url, REPO, "edge", make_image("md-rules-edge"))
    repo = client.get(f"/v2/ua/{REPO}/_regext/mirror-diff?remote=ua").json["repositories"][0]
    assert repo["mirror"] == {"upstream": "ua", "missing": ["v2"], "stale": [], "gone": [], "not_mirrored": ["edge"]}
    assert sorted(e["tag"] for e in repo["only_b"]) == ["edge", "v2"]


def test_remote_names_and_rules_are_checked(settings, upstreams):
    client = mirror(settings, upstreams)
    assert_error(client.get(f"/v2/ua/{REPO}/_regext/mirror-diff?remote=nowhere"), 400, "UNSUPPORTED")
    # ub mirrors library/* only: another repository is not compared
    resp = client.get(f"/v2/ub/{REPO}/_regext/mirror-diff?remote=ub&remote_repo=other/app")
    assert assert_error(resp, 400, "UNSUPPORTED")["errors"][0]["detail"] == {"parameter": "remote_repo"}


def test_a_remote_named_like_an_upstream_is_refused_at_load(settings, upstreams):
    with pytest.raises(ConfigError, match="mirror.remotes.ua: proxy.upstreams has an upstream of the same name"):
        mirror(settings, upstreams, remotes={"ua": {"url": upstreams[1].url}})


def test_the_ui_lists_upstreams_as_remotes_and_compares_with_them(settings, upstreams):
    client = mirror(settings, upstreams)
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=b.example").status_code == 200
    page = client.get("/ui/mirror").get_data(as_text=True)
    assert '<option value="ua">ua</option>' in page and '<option value="ub">ub</option>' in page
    diff = client.get(f"/ui/mirror/diff?name=ub/{REPO}&remote=ub")
    text = diff.get_data(as_text=True)
    assert diff.status_code == 200 and "1 tags identical." in text
    assert "As a cache of upstream <code>ub</code>: 0 tags missing here, 0 stale" in text
