"""Content rules (``tags``, ``versions``), ``on_demand = false`` and ``rate``, against a real upstream
(Debian docker-registry) behind a counting relay: what the rules refuse is never asked upstream."""
from __future__ import annotations

import pytest

from registry_ext.proxy.config import UpstreamConfigError, parse_upstream
from registry_ext.proxy.rules import TokenBucket, compile_rules
from tests.support.e2e_mirror_seed import digest
from tests.support.mirror_upstreams import mirror_app, REPO, make_image, push, start_upstreams
from tests.support.oci_client import assert_error
from tests.support.relay import Relay

FAST = {"timeout": 5, "max_retries": 0, "retry_delay": 0.05}
TAGS = ("latest", "1.19.0", "1.20.1", "2.0.0", "v1.21")


@pytest.fixture(scope="module")
def upstream():
    started = start_upstreams(1, prefix="rules")[0]
    try:
        for tag in TAGS[1:]:
            push(started.url, REPO, tag, make_image(tag))
        yield started
    finally:
        started.server.stop()


@pytest.fixture
def relay(upstream):
    with Relay(upstream.url) as relay:
        yield relay


def mirror(settings, url: str, **extra):
    table = {"hosts": ["r.example"], "urls": [url], **FAST, **extra}
    app = mirror_app(settings, {"ru": table})
    return app.test_client()


def upstream_calls(relay: Relay) -> int:
    with relay.lock:
        return sum(relay.counts.values())


def test_rules_select_tags_by_regex_and_range():
    rules = compile_rules([r"v?[0-9.]+"], [">=1.20, <2"])
    assert [t for t in TAGS if rules.allows(t)] == ["1.20.1", "v1.21"]
    assert compile_rules([], []).allows("anything") and not compile_rules([], []).active
    assert [t for t in TAGS if compile_rules(["latest|2.*"], []).allows(t)] == ["latest", "2.0.0"]


@pytest.mark.parametrize("table, message", [
    ({"tags": ["(unclosed"]}, "tags: '(unclosed' is invalid"),
    ({"tags": [""]}, "tags: at most 64 non-empty strings"),
    ({"versions": [">=x.y"]}, "versions: '>=x.y'"),
    ({"versions": "1.2"}, "versions: wrong type str"),
    ({"on_demand": "no"}, "on_demand: wrong type str"),
    ({"rate": -1}, "rate: must be 0"),
    ({"cache_max_bytes": -1}, "cache_max_bytes: must be"),
    ({"cache_expire_days": 40_000}, "cache_expire_days: must be"),
])
def test_bad_rules_are_refused_at_start(table, message):
    with pytest.raises(UpstreamConfigError, match=message.replace("(", r"\(")):
        parse_upstream("x", {"hosts": ["x.example"], "urls": ["http://127.0.0.1:1"], **table})


def test_a_tag_outside_the_rules_is_404_and_never_dialled(settings, relay, upstream):
    client = mirror(settings, relay.url, tags=[r"[0-9.]+"], versions=[">=1.20"])
    resp = client.get(f"/v2/{REPO}/manifests/1.19.0?ns=r.example")
    assert_error(resp, 404, "MANIFEST_UNKNOWN")
    assert "outside the upstream's mirror rules" in resp.json["errors"][0]["message"]
    assert_error(client.get(f"/v2/r.example/{REPO}/manifests/latest"), 404, "MANIFEST_UNKNOWN")
    assert upstream_calls(relay) == 0
    assert client.get(f"/v2/{REPO}/manifests/1.20.1?ns=r.example").status_code == 200
    # by digest is always allowed: index children and referrers are only named by digest
    resp = client.get(f"/v2/{REPO}/manifests/{upstream.image.digest}?ns=r.example")
    assert resp.status_code == 200 and resp.data == upstream.image.manifest
    assert client.get(f"/v2/{REPO}/tags/list?ns=r.example").json["tags"] == ["1.20.1", "2.0.0"]


def test_not_on_demand_serves_the_cache_only(settings, relay, upstream):
    filler = mirror(settings, relay.url)
    assert filler.get(f"/v2/{REPO}/manifests/latest?ns=r.example").status_code == 200
    layer = upstream.image.layer
    assert filler.get(f"/v2/{REPO}/blobs/{digest(layer)}?ns=r.example").data == layer
    before = upstream_calls(relay)
    client = mirror(settings, relay.url, on_demand=False, manifest_ttl=0)
    resp = client.get(f"/v2/{REPO}/manifests/latest?ns=r.example")
    assert resp.status_code == 200 and resp.data == upstream.image.manifest and "X-Regext-Mirror" not in resp.headers
    assert client.get(f"/v2/{REPO}/blobs/{digest(layer)}?ns=r.example").data == layer
    assert_error(client.get(f"/v2/{REPO}/manifests/2.0.0?ns=r.example"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{REPO}/blobs/{digest(upstream.image.config + b'x')}?ns=r.example"), 404,
                 "BLOB_UNKNOWN")
    resp = client.get(f"/v2/{REPO}/tags/list?ns=r.example")
    assert resp.json["tags"] == ["latest"] and "X-Regext-Mirror" not in resp.headers
    resp = client.get(f"/v2/{REPO}/referrers/{upstream.image.digest}?ns=r.example")
    assert resp.status_code == 200 and resp.json["manifests"] == [] and "X-Regext-Mirror" not in resp.headers
    assert upstream_calls(relay) == before


def test_over_the_rate_a_cached_tag_is_stale_and_an_uncached_one_503(settings, relay, upstream):
    client = mirror(settings, relay.url, rate=0.001, manifest_ttl=0)  # one request, then ~1000 s per token
    assert client.get(f"/v2/{REPO}/manifests/latest?ns=r.example").status_code == 200
    resp = client.get(f"/v2/{REPO}/manifests/latest?ns=r.example")
    assert resp.status_code == 200 and resp.headers["X-Regext-Mirror"] == "stale"
    resp = client.get(f"/v2/{REPO}/manifests/2.0.0?ns=r.example")
    assert_error(resp, 503, "UNSUPPORTED")
    assert 900 < int(resp.headers["Retry-After"]) <= 1000
    assert upstream_calls(relay) == 1


def test_the_bucket_waits_within_its_bound():
    now = [0.0]
    slept: list[float] = []
    bucket = TokenBucket(2.0, clock=lambda: now[0], sleep=slept.append)
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]  # a burst of one second's worth
    assert bucket.take() == 0.0 and slept == [0.5]        # the third waits its share
    assert bucket.take(max_wait=0.5) == 1.0 and slept == [0.5]  # too long: refused, nothing taken
    assert bucket.take(max_wait=1.0) == 0.0 and slept == [0.5, 1.0]
    now[0] = 10.0                                          # refilled, up to the burst
    assert [bucket.take(max_wait=0), bucket.take(max_wait=0), bucket.take(max_wait=0)] == [0.0, 0.0, 0.5]
