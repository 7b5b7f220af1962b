"""Eviction from the mirror's cache (services/mirror_evict.py) against a real upstream (Debian
docker-registry behind a counting relay): over the cap the least recently pulled image goes through
the delete path, a blob it shares with a kept image stays, gc frees the rest, and a later pull of the
evicted tag fetches it again; content not pulled for ``cache_expire_days`` goes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from registry_ext.cli import main
from registry_ext.clock import now_ms
from registry_ext.oci.digest import parse_digest
from registry_ext.services import mirror_evict, retention
from registry_ext.index.gc_state import GcState
from registry_ext.services.gc import GarbageCollector
from registry_ext.services.gc_schedule import run_gc
from tests.support.e2e_mirror_seed import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Pusher, digest
from tests.support.mirror_upstreams import mirror_app, REPO, start_upstreams
from tests.support.relay import Relay

LOCAL = f"ev/{REPO}"
DAY = 86_400_000
SHARED = bytes(range(256)) * 80          # 20480 bytes in both images
OWN = {"old": b"o" * 10_000, "new": b"n" * 10_000}


def manifest(tag: str) -> tuple[bytes, dict[str, bytes]]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    blobs = {"config": config, "shared": SHARED, "own": OWN[tag]}
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, "digest": digest(config), "size": len(config)},
           "layers": [{"mediaType": OCI_LAYER, "digest": digest(b), "size": len(b)} for b in (SHARED, OWN[tag])]}
    return json.dumps(doc).encode(), blobs


@pytest.fixture(scope="module")
def upstream():
    started = start_upstreams(1, prefix="evict")[0]
    pusher = Pusher(started.url)
    try:
        for tag in OWN:
            body, blobs = manifest(tag)
            for data in blobs.values():
                pusher.blob(REPO, data)
            pusher.manifest(REPO, tag, (body, OCI_MANIFEST))
        yield started
    finally:
        started.server.stop()


@pytest.fixture
def relay(upstream):
    with Relay(upstream.url) as relay:
        yield relay


def mirror(settings, url: str, **limits):
    table = {"hosts": ["ev.example"], "urls": [url], "timeout": 5, "max_retries": 0, **limits}
    app = mirror_app(settings, {"ev": table})
    return app, app.test_client()


def pull(client, tag: str) -> None:
    body, blobs = manifest(tag)
    resp = client.get(f"/v2/{REPO}/manifests/{tag}?ns=ev.example")
    assert resp.status_code == 200 and resp.data == body
    for data in blobs.values():
        assert client.get(f"/v2/{REPO}/blobs/{digest(data)}?ns=ev.example").data == data


def stored(reg, data: bytes) -> bool:
    return reg.storage.blobs.size(parse_digest(digest(data))) is not None


def test_over_the_cap_the_least_recently_pulled_image_goes(settings, relay):
    # both images: 20480 shared + 2 x 10000 own + configs and manifests; one fits under 35000
    app, client = mirror(settings, relay.url, cache_max_bytes=35_000)
    reg = app.extensions["registry"]
    pull(client, "old")
    pull(client, "new")
    reg.index.pulls.record(LOCAL, "new", digest(manifest("new")[0]), now_ms() + 60_000)  # the newer pull
    planned = mirror_evict.plan(reg, mirror_evict.configured(app.config["SETTINGS"].proxy.upstreams))
    old_digest = digest(manifest("old")[0])
    assert [(d.kind, d.target) for d in planned.deletions] == [("tag", "old"), ("manifest", old_digest)]
    assert "least recently pulled" in planned.deletions[0].reasons[0]
    outcome = retention.apply(reg, planned)
    assert len(outcome.deleted) == 2 and not outcome.skipped
    assert client.get(f"/v2/{LOCAL}/tags/list").json["tags"] == ["new"]
    GarbageCollector(reg.storage, 0).collect()
    assert stored(reg, SHARED) and stored(reg, OWN["new"]) and not stored(reg, OWN["old"])
    assert mirror_evict.plan(reg, mirror_evict.configured(app.config["SETTINGS"].proxy.upstreams)).deletions == ()
    before = relay.count("GET", f"/v2/{REPO}/blobs/{digest(OWN['old'])}")
    pull(client, "old")  # fetched again from the upstream
    assert relay.count("GET", f"/v2/{REPO}/blobs/{digest(OWN['old'])}") == before + 1
    assert relay.count("GET", f"/v2/{REPO}/blobs/{digest(SHARED)}") == 1  # the shared blob stayed


def test_content_not_pulled_for_the_expiry_goes(settings, relay):
    app, client = mirror(settings, relay.url, cache_expire_days=1)
    reg = app.extensions["registry"]
    upstreams = mirror_evict.configured(app.config["SETTINGS"].proxy.upstreams)
    pull(client, "old")
    pull(client, "new")
    later = now_ms() + 2 * DAY
    assert mirror_evict.plan(reg, upstreams).deletions == ()
    reg.index.pulls.record(LOCAL, "new", digest(manifest("new")[0]), later - DAY // 2)
    planned = mirror_evict.plan(reg, upstreams, later)
    assert [(d.kind, d.target) for d in planned.deletions] == [("tag", "old"),
                                                               ("manifest", digest(manifest("old")[0]))]
    assert "not pulled for 1d" in planned.deletions[0].reasons[0]
    retention.apply(reg, planned)
    assert client.get(f"/v2/{LOCAL}/tags/list").json["tags"] == ["new"]


def test_the_retention_command_plans_evictions(settings, relay, tmp_path):
    app, client = mirror(settings, relay.url, cache_max_bytes=1)
    pull(client, "old")
    config = tmp_path / "registry.toml"
    config.write_text(f'[proxy.upstreams.ev]\nhosts = ["ev.example"]\nurls = ["{relay.url}"]\ncache_max_bytes = 1\n')
    args = ["retention", "--dry-run", "--config", str(config), "--data-dir", settings.storage.root,
            "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix]
    result = CliRunner().invoke(main, args, env={"REGISTRY_EXT_CONFIG": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith(f"delete tag      {LOCAL}:old -> sha256:") and "over its cap of 1" in lines[1]
    assert client.get(f"/v2/{LOCAL}/tags/list").json["tags"] == ["old"]


def test_the_gc_run_evicts_first_and_frees_the_blobs(settings, relay):
    app, client = mirror(settings, relay.url, cache_max_bytes=1)
    reg = app.extensions["registry"]
    pull(client, "new")
    state = GcState(reg.index.client, reg.index.keys, 60_000)
    upstreams = mirror_evict.configured(app.config["SETTINGS"].proxy.upstreams)
    report = run_gc(reg.storage, state, 0, before=mirror_evict.scheduled(reg, (), upstreams))
    assert report is not None and report.blobs_deleted == 4  # both layers, the config, the manifest
    assert client.get(f"/v2/{LOCAL}/tags/list").json["tags"] == []
    assert not stored(reg, SHARED) and not stored(reg, OWN["new"])
