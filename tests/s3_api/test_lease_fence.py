"""On S3 the repository lock is a lease in Redis, and a lease can be lost (a host stalled past its TTL,
another took over). An index update made under a lost lease must not land: it answers 503, its journal
entry stays, and the reconciler indexes what storage holds."""
from __future__ import annotations

import pytest

from registry_ext import failpoints
from registry_ext.services.reconcile import Reconciler
from tests.support.oci_client import conformance_manifest, push_config_and_layer, push_manifest

NAME = "fence/app"


def steal_lease_at(monkeypatch, registry, point: str) -> list[str]:
    """At ``point`` of a write, another host takes the repository's lease (its key, another token)."""
    stolen = []
    real = failpoints.hit

    def hit(name: str) -> None:
        if name == point and not stolen:
            key = registry.storage.repos.held(NAME).key
            registry.index.client.set(key, "another-host")
            stolen.append(key)
        real(name)

    monkeypatch.setattr(failpoints, "hit", hit)
    return stolen


@pytest.mark.parametrize("point", ["manifest.before-index", "delete.before-index"])
def test_an_index_update_under_a_lost_lease_does_not_land(client, app, monkeypatch, point):
    registry = app.extensions["registry"]
    body = conformance_manifest(push_config_and_layer(client, NAME))
    if point == "delete.before-index":
        assert push_manifest(client, NAME, "v1", body).status_code == 201
    stolen = steal_lease_at(monkeypatch, registry, point)
    resp = (push_manifest(client, NAME, "v1", body) if point == "manifest.before-index"
            else client.delete(f"/v2/{NAME}/manifests/v1"))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5", resp.get_data()
    assert stolen and resp.get_json()["errors"][0]["message"].startswith("the repository's lock was lost")
    listed = client.get(f"/v2/{NAME}/tags/list").get_json()["tags"]
    assert listed == ([] if point == "manifest.before-index" else ["v1"])  # the late update did not land
    assert [i for _key, i in registry.storage.journal.entries()]  # its entry stays for the reconciler
    registry.index.client.delete(stolen[0])  # the other host is done with the lease
    assert Reconciler(registry.storage, registry.index).sweep() == 1
    listed = client.get(f"/v2/{NAME}/tags/list").get_json()["tags"]
    assert listed == (["v1"] if point == "manifest.before-index" else [])  # storage's state, indexed
    assert list(registry.storage.journal.entries()) == []
