"""Writes and verification while the index is behind storage (issue #10, items 3 and 4).

The index falls behind storage when Redis restarts from an older snapshot or refuses a write.
Until the next maintenance tick repairs it, a request must not trust it for what storage alone
knows: a manifest ``DELETE`` takes the tags to remove from the tag files, so no tag is left
pointing at the deleted manifest; and verification and ``check`` compare catalog membership with
storage, so a repository holding only blobs comes back. Real redis-servers throughout.
"""
import os
import time

import redis
from click.testing import CliRunner

from registry_ext.cli import main
from tests.support.oci_client import make_image, push_blob, push_manifest, random_config, sha256_digest, tag_list
from tests.support.recovery import app_for, check_findings, maintenance
from tests.support.servers import refuse_writes


def restart_from_snapshot(server) -> None:
    server.kill()
    server.start()


def test_delete_by_digest_after_a_restart_from_an_older_snapshot_leaves_no_tag(tmp_path, private_redis):
    app = app_for(tmp_path, private_redis.url)
    client = app.test_client()
    image = make_image(client, "app", tag=None)
    make_image(client, "app", tag="keep")
    keeper = maintenance(app)
    keeper.tick()
    redis.Redis.from_url(private_redis.url).save()  # the snapshot knows the manifest, not the tags below
    for tag in ("1.0", "stable"):
        assert push_manifest(client, "app", tag, image["body"]).status_code == 201
    restart_from_snapshot(private_redis)
    assert tag_list(client, "app") == ["keep"]  # the index lost both tags

    assert client.delete(f"/v2/app/manifests/{image['manifest']}").status_code == 202
    reg = app.extensions["registry"]
    assert reg.storage.repos.tag("app", "1.0") is None and reg.storage.repos.tag("app", "stable") is None
    for tag in ("1.0", "stable"):
        assert client.get(f"/v2/app/manifests/{tag}").status_code == 404
        assert [e.event for e in reg.storage.repos.history("app", tag)] == ["created", "deleted"]
    keeper.tick()
    assert tag_list(client, "app") == ["keep"]
    assert check_findings(app) == []  # no dangling-tag


def test_delete_by_digest_after_a_refused_tag_write_leaves_no_tag(tmp_path, redis_server):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    image = make_image(client, "app", tag=None)
    refuse_writes(redis_server, True)
    try:
        assert push_manifest(client, "app", "v1", image["body"]).status_code == 503  # tag file written
    finally:
        refuse_writes(redis_server, False)
    assert tag_list(client, "app") == []

    assert client.delete(f"/v2/app/manifests/{image['manifest']}").status_code == 202
    assert app.extensions["registry"].storage.repos.tag("app", "v1") is None
    assert client.get("/v2/app/manifests/v1").status_code == 404
    maintenance(app).tick()  # replays the refused push: the tag is gone on storage, so from the index too
    assert tag_list(client, "app") == []
    assert check_findings(app) == []


def test_a_replayed_manifest_write_indexes_the_tags_storage_has(tmp_path, private_redis):
    """The journal replay of a manifest takes its tags from the tag files too, not from the index."""
    app = app_for(tmp_path, private_redis.url)
    client = app.test_client()
    image = make_image(client, "app", tag=None)
    keeper = maintenance(app)
    keeper.tick()
    redis.Redis.from_url(private_redis.url).save()
    assert push_manifest(client, "app", "1.0", image["body"]).status_code == 201
    restart_from_snapshot(private_redis)
    refuse_writes(private_redis.url, True)
    try:  # the same manifest again by digest: its journal entry names the manifest only
        assert push_manifest(client, "app", image["manifest"], image["body"]).status_code == 503
    finally:
        refuse_writes(private_redis.url, False)

    assert keeper.reconciler.sweep() == 1  # the replay alone, before any verification
    assert tag_list(client, "app") == ["1.0"]


def test_a_repository_of_blobs_only_comes_back_after_a_restart_from_an_older_snapshot(tmp_path,
                                                                                       private_redis):
    app = app_for(tmp_path, private_redis.url)
    client = app.test_client()
    make_image(client, "images", tag="1")
    keeper = maintenance(app)
    keeper.tick()
    redis.Redis.from_url(private_redis.url).save()
    push_blob(client, "blobs-only", random_config())  # a repository with blobs and nothing else yet
    assert "blobs-only" in client.get("/v2/_catalog").json["repositories"]
    restart_from_snapshot(private_redis)
    assert client.get("/v2/_catalog").json["repositories"] == ["images"]
    assert client.get("/v2/blobs-only/tags/list").status_code == 404

    findings = check_findings(app)
    assert findings == [{"kind": "missing-from-catalog", "repository": "blobs-only", "subject": "blobs-only",
                         "repaired": False}]
    keeper.tick()  # the verification after the restart (new run_id)
    assert client.get("/v2/_catalog").json["repositories"] == ["blobs-only", "images"]
    assert client.get("/v2/blobs-only/tags/list").json == {"name": "blobs-only", "tags": []}
    assert check_findings(app) == []


def test_check_repair_puts_a_blobs_only_repository_back_in_the_catalog(tmp_path, redis_server, redis_client):
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    push_blob(client, "blobs-only", random_config())
    settings = app.config["SETTINGS"]
    redis_client.zrem(f"{settings.redis.key_prefix}:repos", "blobs-only")  # as an older snapshot would
    result = CliRunner().invoke(main, ["check", "--repair", "--data-dir", settings.storage.root,
                                       "--redis-url", settings.redis.url, "--key-prefix",
                                       settings.redis.key_prefix])
    assert result.exit_code == 0, result.output
    assert '"missing-from-catalog"' in result.output
    assert client.get("/v2/_catalog").json["repositories"] == ["blobs-only"]
    assert check_findings(app) == []


def test_check_reports_a_refused_blob_link_once_it_is_over_not_while_it_may_run(tmp_path, redis_server):
    """A catalog-only journal entry holds no lock: `check` reports it once it is older than any such
    write lasts (a check under upload load found running ones), and a running one hides nothing."""
    app = app_for(tmp_path, redis_server)
    client = app.test_client()
    refuse_writes(redis_server, True)
    try:
        # stored and linked: the catalog follows (item 15)
        assert client.post(f"/v2/new/blobs/uploads/?digest={sha256_digest(b'x')}", data=b"x").status_code == 201
    finally:
        refuse_writes(redis_server, False)
    assert check_findings(app) == []  # young: maybe still running, and its repository is being added
    (path, _intent), = app.extensions["registry"].storage.journal.entries()
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert check_findings(app) == [
        {"kind": "unfinished-write", "repository": "new", "subject": "catalog", "repaired": False},
        {"kind": "missing-from-catalog", "repository": "new", "subject": "new", "repaired": False}]
    maintenance(app).tick()
    assert client.get("/v2/_catalog").json["repositories"] == ["new"]
    assert check_findings(app) == []
