"""The scheduled sync (proxy/sync.py) against a real upstream (Debian docker-registry behind a counting
relay): it copies the tags the rules name, an index's children and every blob, so a cache-only
upstream (``on_demand = false``) serves them; it runs when due, and not while another holds its lease."""
from __future__ import annotations

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from registry_ext.index.leases import Leases
from registry_ext.proxy.config import UpstreamConfigError, parse_upstream
from registry_ext.services import mirror_evict, retention
from tests.support.e2e_mirror_seed import CONFIG, LAYER, OCI_INDEX, Pusher, digest, image, index
from tests.support.mirror_upstreams import mirror_app, REPO, start_upstreams
from tests.support.oci_client import assert_error
from tests.support.relay import Relay


@pytest.fixture(scope="module")
def upstream():
    started = start_upstreams(1, prefix="sync")[0]
    pusher = Pusher(started.url)
    try:
        pusher.blob(REPO, CONFIG)
        pusher.blob(REPO, LAYER)
        children = [image(label)[0] for label in ("amd64", "arm64")]
        for child in children:
            pusher.manifest(REPO, None, (child, image("x")[1]))
        pusher.manifest(REPO, "multi", index(children))
        for tag in ("1.19.0", "1.20.1"):
            pusher.manifest(REPO, tag, image(tag))
        yield started, children
    finally:
        started.server.stop()


@pytest.fixture
def relay(upstream):
    with Relay(upstream[0].url) as relay:
        yield relay


def calls(relay: Relay) -> int:
    with relay.lock:
        return sum(relay.counts.values())


def mirror(settings, url: str):
    table = {"hosts": ["sy.example"], "urls": [url], "timeout": 5, "max_retries": 0, "on_demand": False,
             "sync_interval": 60, "repositories": [REPO], "tags": [r"1\.20\..*", "multi"]}
    app = mirror_app(settings, {"sy": table})
    return app, app.test_client()


def test_a_sync_copies_what_the_rules_name_and_a_cache_only_upstream_serves_it(settings, relay, upstream):
    app, client = mirror(settings, relay.url)
    assert_error(client.get(f"/v2/{REPO}/manifests/1.20.1?ns=sy.example"), 404, "MANIFEST_UNKNOWN")
    assert calls(relay) == 0
    app.extensions["mirror_sync"].run_due()
    synced = calls(relay)
    assert synced > 0 and relay.count("GET", f"/v2/{REPO}/manifests/1.19.0") == 0
    assert relay.count("GET", f"/v2/{REPO}/blobs/{digest(LAYER)}") == 1  # once, though four manifests use it
    resp = client.get(f"/v2/{REPO}/manifests/multi?ns=sy.example")
    assert resp.status_code == 200 and resp.content_type == OCI_INDEX
    for child in upstream[1]:
        assert client.get(f"/v2/{REPO}/manifests/{digest(child)}?ns=sy.example").data == child
    assert client.get(f"/v2/{REPO}/manifests/1.20.1?ns=sy.example").data == image("1.20.1")[0]
    assert client.get(f"/v2/{REPO}/blobs/{digest(LAYER)}?ns=sy.example").data == LAYER
    assert_error(client.get(f"/v2/{REPO}/manifests/1.19.0?ns=sy.example"), 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/sy/{REPO}/tags/list").json["tags"] == ["1.20.1", "multi"]
    assert calls(relay) == synced  # the pulls asked nothing upstream
    app.extensions["mirror_sync"].run_due()  # not due again for sync_interval
    assert calls(relay) == synced


def test_a_sync_waits_for_its_interval_and_its_lease(settings, relay):
    app, _client = mirror(settings, relay.url)
    reg = app.extensions["registry"]
    reg.index.mirror.record_sync("sy", 0)  # long ago: due
    with reg.index.mirror.sync_lease("sy", Leases(reg.index.client)) as lease:
        assert lease is not None
        app.extensions["mirror_sync"].run_due()  # another worker holds it
    assert calls(relay) == 0
    app.extensions["mirror_sync"].run_due()
    assert calls(relay) > 0 and reg.index.mirror.synced("sy") > 0


@pytest.mark.parametrize("table", [{"sync_interval": 60, "repositories": ["library/*"]},
                                   {"sync_interval": 5, "repositories": ["library/app"]}])
def test_a_sync_needs_named_repositories_and_a_sane_interval(table):
    with pytest.raises(UpstreamConfigError, match="sync_interval: 0 .no sync. or 10-2592000 seconds"):
        parse_upstream("x", {"hosts": ["x.example"], "urls": ["http://127.0.0.1:1"], **table})


def test_eviction_takes_an_index_with_its_children(settings, relay, upstream):
    app, _client = mirror(settings, relay.url)
    app.extensions["mirror_sync"].run_due()
    table = {"hosts": ["sy.example"], "urls": [relay.url], "cache_max_bytes": 1}
    capped = create_app(replace(settings, "proxy", upstreams={"sy": table}))
    reg = capped.extensions["registry"]
    planned = mirror_evict.plan(reg, mirror_evict.configured({"sy": table}))
    multi = digest(index(upstream[1])[0])
    kinds = [(d.kind, d.target) for d in planned.deletions]
    assert kinds[:2] == [("tag", "1.20.1"), ("tag", "multi")]
    manifests = [target for kind, target in kinds[2:]]
    assert sorted(manifests) == sorted([digest(image("1.20.1")[0]), multi, *(digest(c) for c in upstream[1])])
    assert all(manifests.index(multi) < manifests.index(digest(c)) for c in upstream[1])  # the index first
    outcome = retention.apply(reg, planned)
    assert len(outcome.deleted) == 6 and not outcome.skipped
    assert reg.index.read.snapshot(f"sy/{REPO}").manifests == {}
