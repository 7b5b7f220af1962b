"""The registry on a highly available Redis (issue #12 item 4): Sentinel failover under pushes, and the
whole API on a 3-primary Redis Cluster. Real servers only (tests/support/redis_ha.py).

Failover: the primary is SIGKILLed while clients push. Pulls keep working (they read storage); listings
answer 503 with Retry-After, never a 500, until the sentinel promotes the replica; then the same app
answers again without a restart, and every push it acknowledged is listed, including the ones the
replica had not received when its primary died (the index is verified against storage after a failover,
as after a Redis restart, and unfinished writes are replayed from the journal).
"""
from __future__ import annotations

import time

import pytest

from registry_ext.app import create_worker_app
from registry_ext.config import load_settings
from tests.support.oci_client import make_image
from tests.support.redis_ha import Cluster, SentinelGroup


def settings_for(tmp_path, url: str):
    return load_settings(data={"storage": {"root": str(tmp_path / "data")},
                               "redis": {"url": url, "key_prefix": "ha", "watch_interval_ms": 200}}, environ={})


@pytest.fixture
def sentinel(tmp_path):
    group = SentinelGroup(tmp_path / "sentinel").start()
    yield group
    group.stop()


@pytest.fixture
def worker_app(tmp_path):
    apps = []

    def build(url: str):
        app = create_worker_app(settings_for(tmp_path, url))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["maintenance"].stop()


def listed(client, name: str) -> set[str] | None:
    resp = client.get(f"/v2/{name}/tags/list")
    if resp.status_code == 503:
        assert resp.headers["Retry-After"] and resp.get_json()["errors"], resp.get_data()
        return None
    assert resp.status_code == 200, resp.get_data()
    return set(resp.get_json()["tags"])


def test_a_failover_under_pushes_loses_nothing_acknowledged(sentinel, worker_app):
    client = worker_app(sentinel.url).test_client()
    acknowledged = {}
    for i in range(5):
        acknowledged[make_image(client, "ha/app", tag=f"before-{i}", layers=(f"b{i}".encode(),))["manifest"]] = \
            f"before-{i}"
    attempted = set(acknowledged.values())
    old = sentinel.kill_master()
    statuses: dict[int, int] = {}
    deadline, i = time.monotonic() + 40, 0
    while time.monotonic() < deadline:  # keep pushing through the failover until pushes are taken again
        resp = client.get("/v2/ha/app/tags/list")
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code in (200, 503), resp.get_data()  # an outage is a 503, never a 500
        assert resp.status_code == 200 or resp.headers["Retry-After"] == "1"
        attempted.add(f"during-{i}")
        try:
            image = make_image(client, "ha/app", tag=f"during-{i}", layers=(f"d{i}".encode(),))
        except AssertionError:
            time.sleep(0.2)  # 503 from the index while there is no primary
        else:
            acknowledged[image["manifest"]] = f"during-{i}"
            if sentinel.master_port() != old and len([t for t in acknowledged.values() if "during" in t]) >= 3:
                break
        i += 1
    assert sentinel.master_port() != old, "no failover happened"
    pull = client.get("/v2/ha/app/manifests/before-0")
    assert pull.status_code == 200  # pulls read storage, whatever the index does
    deadline = time.monotonic() + 30
    while (found := listed(client, "ha/app")) is None or not set(acknowledged.values()) <= found:
        assert time.monotonic() < deadline, (sorted(acknowledged.values()), found)
        time.sleep(0.2)
    # A push answered 503 may still take effect (its bytes were stored and its journal entry is replayed,
    # as a retried PUT would): nothing acknowledged is missing, nothing never pushed appears.
    assert set(acknowledged.values()) <= found <= attempted
    assert statuses.get(503, 0) >= 1, statuses  # the outage was seen, as a 503


@pytest.fixture
def cluster(tmp_path):
    group = Cluster(tmp_path / "cluster").start()
    yield group
    group.stop()


def test_the_api_on_a_redis_cluster(cluster, worker_app):
    client = worker_app(cluster.url).test_client()
    pushed = {name: make_image(client, name, tag="1.0.0") for name in ("a/one", "b/two", "c/three")}
    make_image(client, "a/one", tag="1.1.0", layers=(b"newer",))
    assert listed(client, "a/one") == {"1.0.0", "1.1.0"}
    catalog = client.get("/v2/_catalog")
    assert catalog.status_code == 200 and catalog.get_json()["repositories"] == ["a/one", "b/two", "c/three"]
    newer = client.get("/v2/a/one/_regext/tags/1.0.0/newer")
    assert newer.status_code == 200, newer.get_data()
    assert [t["name"] for t in newer.get_json()["newer"]] == ["1.1.0"]
    enriched = client.get("/v2/b/two/_regext/tags?sort=semver")
    assert enriched.status_code == 200 and [t["digest"] for t in enriched.get_json()["tags"]] == \
        [pushed["b/two"]["manifest"]]
    assert client.delete("/v2/c/three/manifests/1.0.0").status_code == 202
    assert listed(client, "c/three") == set()
