"""The index repairs itself: journal replay, rebuild after a flush, verification after a restart.

Real redis-servers throughout. Faults are real Redis behaviour: writes
refused (``min-replicas-to-write``), keys flushed, a server killed and
restarted from an older snapshot. Maintenance ticks are called directly,
so each step is deterministic (the thread that calls them in a worker is
exercised by tests/e2e/test_crashes.py).
"""
import json
import os

import pytest
import redis
from click.testing import CliRunner

from registry_ext.cli import main
from tests.support.oci_client import make_image, push_manifest, random_config, sha256_digest, tag_list
from tests.support.recovery import app_for, check_findings, maintenance, populate, snapshot
from tests.support.servers import refuse_writes


def test_a_push_whose_index_write_failed_is_finished_by_the_journal(tmp_path, redis_server):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    first = make_image(client, "app", tag="1.0")
    moved = make_image(client, "app", tag=None)
    refuse_writes(redis_server, True)
    try:
        resp = push_manifest(client, "app", "1.0", moved["body"])
        assert resp.status_code == 503 and resp.json["errors"][0]["code"] == "UNSUPPORTED"
        deleted = client.delete(f"/v2/app/manifests/{first['manifest']}")
        assert deleted.status_code == 503
    finally:
        refuse_writes(redis_server, False)
    reg = app.extensions["registry"]
    assert len(list(reg.storage.journal.entries())) == 2
    assert client.get("/v2/app/manifests/1.0").headers["Docker-Content-Digest"] == moved["manifest"]
    assert reg.index.read.tag_digest("app", "1.0") == first["manifest"]  # behind storage until replayed

    maintenance(app).tick()
    assert list(reg.storage.journal.entries()) == []
    assert reg.index.read.tag_digest("app", "1.0") == moved["manifest"]
    assert client.get(f"/v2/app/_regext/digests/{first['manifest']}/tags").status_code == 404
    history = client.get("/v2/app/_oci/tag-history/1.0").json
    assert [e["digest"] for e in history["manifests"]][:1] == [moved["manifest"]]
    assert check_findings(app) == []


def test_a_write_cut_between_tag_file_and_history_gets_its_event(tmp_path, redis_server):
    failpoints = tmp_path / "failpoints.json"
    app = app_for(tmp_path, redis_server, failpoints_file=str(failpoints))
    client = app.test_client()
    first = make_image(client, "app", tag="v1")
    second = make_image(client, "app", tag=None)
    failpoints.write_text(json.dumps({"manifest.after-tag": "error"}))
    resp = push_manifest(client, "app", "v1", second["body"])
    assert resp.status_code == 500 and resp.json["errors"][0]["code"] == "UNSUPPORTED"
    reg = app.extensions["registry"]
    assert [e.digest for e in reg.storage.repos.history("app", "v1")] == [first["manifest"]]

    maintenance(app).tick()
    events = reg.storage.repos.history("app", "v1")
    assert [(e.event, e.digest) for e in events] == [("created", first["manifest"]), ("moved", second["manifest"])]
    assert events[-1].at == reg.storage.repos.tag("app", "v1").updated_at
    assert reg.index.read.tag_digest("app", "v1") == second["manifest"]
    assert check_findings(app) == []


@pytest.mark.parametrize("point", ["manifest.after-link", "manifest.before-index", "manifest.after-index"])
def test_every_cut_of_a_tagged_push_replays_to_one_consistent_state(tmp_path, redis_server, point):
    failpoints = tmp_path / "failpoints.json"
    app = app_for(tmp_path, redis_server, failpoints_file=str(failpoints))
    client = app.test_client()
    make_image(client, "app", tag="stable")
    image = make_image(client, "app", tag=None)
    failpoints.write_text(json.dumps({point: "error"}))
    assert push_manifest(client, "app", "stable", image["body"]).status_code == 500

    maintenance(app).tick()
    served = client.get("/v2/app/manifests/stable").headers["Docker-Content-Digest"]
    listed = client.get("/v2/app/_regext/tags?n=10").json
    assert {t["name"]: t["digest"] for t in listed["tags"]}["stable"] == served
    assert check_findings(app) == []


def test_a_tag_delete_cut_before_the_index_is_finished(tmp_path, redis_server):
    failpoints = tmp_path / "failpoints.json"
    app = app_for(tmp_path, redis_server, failpoints_file=str(failpoints))
    client = app.test_client()
    make_image(client, "app", tag="old")
    make_image(client, "app", tag="keep")
    failpoints.write_text(json.dumps({"delete.before-index": "error"}))
    assert client.delete("/v2/app/manifests/old").status_code == 500
    assert "old" in tag_list(client, "app")

    maintenance(app).tick()
    assert tag_list(client, "app") == ["keep"]
    assert check_findings(app) == []


def test_a_flushed_index_is_rebuilt_while_pulls_and_pushes_go_on(tmp_path, redis_server, redis_client):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    made = populate(client)
    keeper = maintenance(app)
    keeper.tick()  # marks the index complete for this Redis
    before = snapshot(client, made)
    prefix = app.config["SETTINGS"].redis.key_prefix
    redis_client.delete(*redis_client.keys(f"{prefix}:*"))  # this test's FLUSHDB
    assert client.get("/v2/app/tags/list").status_code == 503  # not a wrong 404, even before a tick

    keeper.observe()
    listing = client.get("/v2/app/tags/list")
    assert listing.status_code == 503 and listing.headers["Retry-After"] == "5"
    assert listing.json["errors"][0]["code"] == "UNSUPPORTED"
    assert client.get("/readyz").json["checks"]["index"] == "rebuilding"
    assert client.get("/v2/app/manifests/latest").status_code == 200
    assert client.get("/v2/app/_oci/tag-history/latest").json["manifests"]  # history is read from storage
    extra = make_image(client, "app", tag="9.9.9")

    keeper.tick()
    state = app.extensions["registry"].index.state
    assert not state.rebuilding
    state.rebuilding = True  # a worker that has not ticked since another one finished the rebuild
    assert client.get("/v2/app/tags/list").status_code == 200 and not state.rebuilding
    assert "9.9.9" in tag_list(client, "app")
    assert client.delete(f"/v2/app/manifests/{extra['manifest']}").status_code == 202
    assert snapshot(client, made) == before
    assert check_findings(app) == []


def test_only_one_worker_rebuilds_and_a_lost_lock_is_not_taken_for_a_finished_rebuild(tmp_path, redis_server,
                                                                                   redis_client):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    make_image(client, "app", tag="1")
    first, second = maintenance(app), maintenance(app)
    meta = app.extensions["registry"].index.meta
    redis_client.delete(meta.marker)  # as a flush would
    assert meta.acquire(second.token, 60_000)
    first.tick()  # another worker holds the lock: wait
    assert app.extensions["registry"].index.state.rebuilding
    assert meta.status().built_on is None

    redis_client.delete(meta.lock)  # the other worker's lock vanished (expired, or a flush)
    assert not meta.complete(second.token, meta.status().run_id)
    assert meta.status().built_on is None
    first.tick()
    assert meta.status().built_on == meta.status().run_id
    assert tag_list(client, "app") == ["1"]


def test_a_redis_restart_that_lost_writes_is_verified_and_repaired(tmp_path, private_redis):
    app = app_for(tmp_path, private_redis.url)
    client = app.test_client()
    kept = make_image(client, "app", tag="1.0")
    keeper = maintenance(app)
    keeper.tick()
    redis.Redis.from_url(private_redis.url).save()  # the last snapshot Redis will restart from
    lost = [make_image(client, "app", tag=f"2.{i}") for i in range(3)]
    make_image(client, "other", tag="x")
    assert client.delete("/v2/app/manifests/1.0").status_code == 202
    private_redis.kill()
    private_redis.start()
    assert tag_list(client, "app") == ["1.0"]  # what the snapshot knew

    keeper.tick()
    assert tag_list(client, "app") == ["2.0", "2.1", "2.2"]
    assert client.get("/v2/_catalog").json["repositories"] == ["app", "other"]
    assert client.get(f"/v2/app/_regext/digests/{kept['manifest']}/tags").json["tags"] == []
    assert {t["digest"] for t in client.get("/v2/app/_regext/tags").json["tags"]} == {i["manifest"] for i in lost}
    status = app.extensions["registry"].index.meta.status()
    assert status.built_on == status.run_id
    assert check_findings(app) == []


def test_a_failed_blob_link_still_reaches_the_catalog(tmp_path, redis_server):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    config = random_config()
    refuse_writes(redis_server, True)
    try:
        resp = client.post(f"/v2/blobs-only/blobs/uploads/?digest={sha256_digest(config)}", data=config)
        assert resp.status_code == 201  # stored and linked: the catalog follows through the journal
    finally:
        refuse_writes(redis_server, False)
    assert client.head(f"/v2/blobs-only/blobs/{sha256_digest(config)}").status_code == 200
    assert "blobs-only" not in client.get("/v2/_catalog").json["repositories"]
    maintenance(app).tick()
    assert "blobs-only" in client.get("/v2/_catalog").json["repositories"]


def test_a_finishing_put_whose_catalog_write_is_refused_answers_201(tmp_path, redis_server):
    """Issue #10 item 15: the blob is stored and linked, so the upload succeeded; no 503, no stale session."""
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    reg = app.extensions["registry"]
    blob = random_config()
    location = client.post("/v2/chunked/app/blobs/uploads/").headers["Location"]
    assert client.patch(location, data=blob[:10], headers={"Content-Range": "0-9"}).status_code == 202
    refuse_writes(redis_server, True)
    try:
        resp = client.put(f"{location}?digest={sha256_digest(blob)}", data=blob[10:],
                          headers={"Content-Range": f"10-{len(blob) - 1}"})
        assert resp.status_code == 201, resp.get_data()
        assert resp.headers["Docker-Content-Digest"] == sha256_digest(blob)
        assert client.get(f"/v2/chunked/app/blobs/{sha256_digest(blob)}", buffered=True).get_data() == blob
    finally:
        refuse_writes(redis_server, False)
    assert os.listdir(reg.storage.layout.uploads) == []  # the session folder is gone
    assert client.get(location).status_code == 404
    assert len(list(reg.storage.journal.entries())) == 1  # the catalog write waits in the journal
    maintenance(app).tick()
    assert "chunked/app" in client.get("/v2/_catalog").json["repositories"]
    assert list(reg.storage.journal.entries()) == []
    assert check_findings(app) == []


def test_check_reports_unfinished_writes_and_repairs_them(tmp_path, redis_server):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    make_image(client, "app", tag="a")
    image = make_image(client, "app", tag=None)
    refuse_writes(redis_server, True)
    try:
        assert push_manifest(client, "app", "b", image["body"]).status_code == 503
    finally:
        refuse_writes(redis_server, False)
    findings = check_findings(app)
    assert ({"kind": "unfinished-write", "repository": "app", "subject": f"b,{image['manifest']}",
             "repaired": False} in findings)
    settings = app.config["SETTINGS"]
    CliRunner().invoke(main, ["check", "--repair", "--data-dir", settings.storage.root,
                              "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix])
    assert check_findings(app) == []
    assert tag_list(client, "app") == ["a", "b"]
    assert not os.listdir(tmp_path / "data" / "journal")
