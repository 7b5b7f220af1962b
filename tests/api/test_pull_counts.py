"""Pull counts (issue #16): a manifest GET by tag counts the tag and its manifest, by digest the manifest;
HEAD counts nothing. Shown in `_regext/tags`, `_regext/manifests` and as PR #579's pull annotations."""
from __future__ import annotations

from registry_ext.services.reindex import reindex
from tests.support.recovery import app_for
from tests.support.oci_client import make_image, push_manifest

NAME = "pulls/app"
IDX = {"Accept": "application/vnd.oci.image.index.v1+json"}


def pulls_by_tag(client) -> dict[str, dict | None]:
    return {t["name"]: t.get("pulls") for t in client.get(f"/v2/{NAME}/_regext/tags").json["tags"]}


def pulls_by_manifest(client) -> dict[str, dict | None]:
    return {m["digest"]: m.get("pulls") for m in client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"]}


def test_gets_count_heads_do_not(client, clock):
    image = make_image(client, NAME, tag="1.0", layers=(b"a",))
    other = make_image(client, NAME, tag="2.0", layers=(b"b",))
    clock["now"] = 1_800_000_000_000
    for _ in range(3):
        assert client.get(f"/v2/{NAME}/manifests/1.0").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/{image['manifest']}").status_code == 200
    assert client.head(f"/v2/{NAME}/manifests/2.0").status_code == 200
    assert client.head(f"/v2/{NAME}/manifests/{other['manifest']}").status_code == 200
    assert client.get(f"/v2/{NAME}/manifests/missing").status_code == 404
    last = "2027-01-15T08:00:04.000Z"  # the fourth GET: 1.8e12 ms + 4 clock steps of 1 s
    assert pulls_by_tag(client) == {"1.0": {"count": 3, "last": "2027-01-15T08:00:03.000Z"}, "2.0": None}
    assert pulls_by_manifest(client) == {image["manifest"]: {"count": 4, "last": last},
                                         other["manifest"]: None}


def test_the_index_shaped_tag_list_carries_the_pull_annotations(client, clock):
    make_image(client, NAME, tag="1.0", layers=(b"a",))
    make_image(client, NAME, tag="2.0", layers=(b"b",))
    clock["now"] = 1_800_000_000_000
    client.get(f"/v2/{NAME}/manifests/2.0")
    client.get(f"/v2/{NAME}/manifests/2.0")
    manifests = client.get(f"/v2/{NAME}/tags/list", headers=IDX).json["manifests"]
    annotations = {m["annotations"]["org.opencontainers.image.ref.name"]: m["annotations"] for m in manifests}
    assert "org.opencontainers.image.pull.count" not in annotations["1.0"]
    assert annotations["2.0"]["org.opencontainers.image.pull.count"] == "2"
    assert annotations["2.0"]["org.opencontainers.image.pull.timestamp"] == "2027-01-15T08:00:02.000Z"


def test_deleting_a_tag_or_manifest_drops_its_counts_and_a_reindex_keeps_the_others(client, app, clock):
    kept = make_image(client, NAME, tag="1.0", layers=(b"a",))
    gone = make_image(client, NAME, tag="2.0", layers=(b"b",))
    for ref in ("1.0", "2.0", "2.0"):
        client.get(f"/v2/{NAME}/manifests/{ref}")
    assert client.delete(f"/v2/{NAME}/manifests/2.0").status_code == 202
    assert push_manifest(client, NAME, "2.0", gone["body"]).status_code == 201  # tagged again: a new tag
    assert pulls_by_tag(client)["2.0"] is None
    assert pulls_by_manifest(client)[gone["manifest"]]["count"] == 2
    assert client.delete(f"/v2/{NAME}/manifests/{gone['manifest']}").status_code == 202
    reg = app.extensions["registry"]
    reindex(reg.storage, reg.index)
    assert {tag: pulls["count"] for tag, pulls in pulls_by_tag(client).items()} == {"1.0": 1}
    assert set(pulls_by_manifest(client)) == {kept["manifest"]}
    rk = reg.index.keys.repo(NAME)
    assert sorted(reg.index.client.hkeys(rk.pulls)) == [f"m:{kept['manifest']}", "t:1.0"]


def test_a_pull_by_tag_costs_one_pipeline_of_three_commands(client, redis_client):
    make_image(client, NAME, tag="1.0", layers=(b"a",))
    redis_client.config_resetstat()
    assert client.get(f"/v2/{NAME}/manifests/1.0").status_code == 200
    stats = {name: value["calls"] for name, value in redis_client.info("commandstats").items()}
    assert stats == {"cmdstat_config|resetstat": 1, "cmdstat_hincrby": 2, "cmdstat_hset": 1}
    redis_client.config_resetstat()
    assert client.head(f"/v2/{NAME}/manifests/1.0").status_code == 200
    stats = {name: value["calls"] for name, value in redis_client.info("commandstats").items()}
    assert stats == {"cmdstat_config|resetstat": 1}


def test_a_pull_is_answered_when_its_count_cannot_be_written(tmp_path, private_redis, caplog):
    app = app_for(tmp_path, private_redis.url)
    client = app.test_client()
    image = make_image(client, NAME, tag="1.0", layers=(b"a",))
    private_redis.kill()
    resp = client.get(f"/v2/{NAME}/manifests/1.0")
    assert resp.status_code == 200 and resp.data == image["body"]
    assert f"pull of {NAME}@{image['manifest']} not counted" in caplog.text
