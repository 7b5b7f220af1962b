"""The update feed when Redis loses it: rebuilt from the tag history under a new epoch (old cursors get
410 with a fresh one), writes during the rebuild kept exactly once, a restart that lost the newest
entries detected, cut writes published by the journal. Real redis-servers, maintenance ticks called
directly (as in tests/test_recovery.py)."""
from __future__ import annotations

import collections
import json

import orjson
import redis

from tests.support.feed_helpers import cursor_now, events, updates
from tests.support.oci_client import make_image, push_manifest
from tests.support.recovery import app_for, check_findings, maintenance


def feed_keys(redis_client, prefix: str) -> list[bytes]:
    return [k for k in redis_client.scan_iter(match=f"{prefix}:*") if b"{feed}" in k or k.endswith(b":events")]


def stream_events(redis_client, prefix: str) -> list[tuple]:
    """Every event in the global stream as (repository, tag, action, digest, previous)."""
    out = []
    for _id, fields in redis_client.xrange(f"{prefix}:{{feed}}:stream"):
        if fields[b"r"]:
            doc = orjson.loads(fields[b"d"])
            out.append((doc["repository"], doc["tag"], doc["action"], doc["digest"], doc["previous"]))
    return out


def history_of_changes(client):
    """Pushes, a move and deletes in two repositories; returns the repositories' recent events."""
    a1 = make_image(client, "app", tag="1.0")
    a2 = make_image(client, "app", tag="1.0")
    make_image(client, "app", tag="tmp")
    assert client.delete("/v2/app/manifests/tmp").status_code == 202
    make_image(client, "team/tool", tag="v1", artifact_type="application/vnd.example.thing")
    return a1, a2


def test_a_flushed_feed_is_rebuilt_from_history_and_old_cursors_expire(tmp_path, redis_server, redis_client):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    history_of_changes(client)
    before = updates(client, repository=["app", "team/tool"], recent=50).json["events"]
    assert len(before) == 5
    old = cursor_now(client)
    prefix = app.config["SETTINGS"].redis.key_prefix
    redis_client.delete(*redis_client.keys(f"{prefix}:*"))  # this test's FLUSHDB

    maintenance(app).tick()  # rebuilds the index, then the feed
    after = updates(client, repository=["app", "team/tool"], recent=50).json["events"]
    assert after == before  # same bytes: times, digests, artifact type
    resp = updates(client, 410, cursor=old)
    detail = resp.json["errors"][0]["detail"]
    assert detail["reason"] == "cursor-expired" and "rebuilt" in detail["why"]
    assert updates(client, cursor=detail["cursor"]).json["events"] == []
    made = make_image(client, "app", tag="2.0")
    assert events(updates(client, cursor=detail["cursor"])) == [("app", "2.0", "pushed", made["manifest"], None)]
    assert collections.Counter(stream_events(redis_client, prefix)).most_common(1)[0][1] == 1


def test_writes_while_the_feed_is_missing_are_kept_exactly_once(tmp_path, redis_server, redis_client):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    _a1, a2 = history_of_changes(client)
    prefix = app.config["SETTINGS"].redis.key_prefix
    redis_client.delete(*feed_keys(redis_client, prefix))  # a registry from before the feed, or a lost feed
    assert updates(client, 503).headers["Retry-After"] == "5"
    during = make_image(client, "app", tag="during")  # staged in its outbox, not copied: no epoch
    moved = make_image(client, "app", tag="1.0")

    maintenance(app).tick()
    found = stream_events(redis_client, prefix)
    assert found.count(("app", "during", "pushed", during["manifest"], None)) == 1
    assert found[-2:] == [("app", "during", "pushed", during["manifest"], None),
                          ("app", "1.0", "moved", moved["manifest"], a2["manifest"])]
    assert len(found) == 7 and len(set(found)) == 7
    recent = updates(client, repository="app", recent=100).json["events"]
    assert [e["tag"] for e in recent] == ["1.0", "1.0", "tmp", "tmp", "during", "1.0"]


def test_a_redis_restart_that_lost_feed_entries_is_detected(tmp_path, private_redis):
    app = app_for(tmp_path, private_redis.url)
    client = app.test_client()
    make_image(client, "app", tag="1.0")
    keeper = maintenance(app)
    keeper.tick()
    kept = cursor_now(client)
    redis.Redis.from_url(private_redis.url).save()  # the snapshot Redis restarts from
    lost = [make_image(client, "app", tag=f"2.{i}") for i in range(2)]
    seen_by_someone = cursor_now(client)  # a client that read the two events now lost
    private_redis.kill()
    private_redis.start()

    keeper.tick()  # new run_id: the index is verified; the repairs are events again
    assert events(updates(client, cursor=kept)) == [("app", f"2.{i}", "pushed", lost[i]["manifest"], None)
                                                    for i in range(2)]
    resp = updates(client, 410, cursor=seen_by_someone)
    assert "lost events" in resp.json["errors"][0]["detail"]["why"]
    assert check_findings(app) == []


def test_cut_writes_are_published_by_the_journal(tmp_path, redis_server, redis_client):
    failpoints = tmp_path / "failpoints.json"
    app = app_for(tmp_path, redis_server, failpoints_file=str(failpoints))
    client = app.test_client()
    cursor = cursor_now(client)
    first = make_image(client, "app", tag="v1")
    second = make_image(client, "app", tag=None)
    failpoints.write_text(json.dumps({"manifest.after-index": "error"}))
    assert push_manifest(client, "app", "v1", second["body"]).status_code == 500
    assert [e[2] for e in events(updates(client, cursor=cursor))] == ["pushed"]  # staged, not copied
    failpoints.write_text(json.dumps({"delete.after-index": "error"}))
    assert client.delete("/v2/app/manifests/v1").status_code == 500

    maintenance(app).tick()
    assert events(updates(client, cursor=cursor)) == [
        ("app", "v1", "pushed", first["manifest"], None),
        ("app", "v1", "moved", second["manifest"], first["manifest"]),
        ("app", "v1", "deleted", None, second["manifest"])]
    assert check_findings(app) == []


def test_a_repair_by_check_is_an_event(tmp_path, redis_server):
    from click.testing import CliRunner

    from registry_ext.cli import main

    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    made = make_image(client, "app", tag="gone")
    cursor = cursor_now(client)
    hexdigest = made["manifest"].split(":")[1]
    (tmp_path / "data" / "repos" / "app" / "_manifests" / "sha256" / hexdigest).unlink()  # a lost manifest link
    settings = app.config["SETTINGS"]
    result = CliRunner().invoke(main, ["check", "--repair", "--data-dir", settings.storage.root,
                                       "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix])
    assert result.exit_code == 0, result.output
    assert events(updates(client, cursor=cursor)) == [("app", "gone", "deleted", None, made["manifest"])]
