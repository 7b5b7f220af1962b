"""Flush Redis, run `registry-ext reindex`, and every endpoint answers exactly as before."""
import json

from click.testing import CliRunner

from registry_ext.cli import main
from tests.support.recovery import populate, snapshot


def redis_dump(redis_client, prefix):
    """Every index key and value (the index marker aside: it records when it was built).

    The update feed's keys (``{feed}`` and each repository's ``events`` stream) are not index
    content: a lost feed is rebuilt from the tag history under a new epoch (tests/test_feed_rebuild.py).
    Nor are pull counts (``pulls``, ``pulled``): statistics storage cannot rebuild
    (tests/api/test_pull_counts.py checks that a reindex keeps them).
    """
    dump = {}
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        if (key == f"{prefix}:{{meta}}".encode() or b"{feed}" in key or b":events" in key
                or key.endswith((b":pulls", b":pulled"))):
            continue
        kind = redis_client.type(key)
        if kind == b"hash":
            dump[key] = redis_client.hgetall(key)
        elif kind == b"zset":
            dump[key] = redis_client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            dump[key] = sorted(redis_client.smembers(key))
        else:
            dump[key] = redis_client.get(key)
    return dump


def test_flush_and_reindex_gives_identical_answers(client, settings, redis_client):
    made = populate(client)
    before = snapshot(client, made)
    assert all(answer[0] == 200 for (path, _h), answer in before.items() if "/_" in path.replace("/v2/_catalog", ""))
    keys_before = redis_dump(redis_client, settings.redis.key_prefix)
    assert len(keys_before) > 10
    redis_client.delete(*keys_before, f"{settings.redis.key_prefix}:{{meta}}")  # this test's FLUSHDB
    assert client.get("/v2/app/tags/list").status_code == 503  # the index marker went with the flush

    result = CliRunner().invoke(main, ["reindex", "--data-dir", settings.storage.root,
                                       "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"repositories": 2, "manifests": 14, "tags": 10, "skipped": 0}
    assert redis_dump(redis_client, settings.redis.key_prefix) == keys_before
    assert redis_client.exists(f"{settings.redis.key_prefix}:{{meta}}")
    assert snapshot(client, made) == before


def test_reindex_drops_what_storage_no_longer_has(client, settings, redis_client):
    populate(client)
    prefix = settings.redis.key_prefix
    redis_client.zadd(f"{prefix}:repos", {"ghost": 0})
    redis_client.hset(f"{prefix}:repo:{{ghost}}:tags", "x", "sha256:" + "0" * 64)
    redis_client.hset(f"{prefix}:repo:{{app}}:tags", "stale", "sha256:" + "0" * 64)
    result = CliRunner().invoke(main, ["reindex", "--data-dir", settings.storage.root,
                                       "--redis-url", settings.redis.url, "--key-prefix", prefix])
    assert result.exit_code == 0, result.output
    assert client.get("/v2/_catalog").json == {"repositories": ["app", "team/tool"]}
    assert "stale" not in client.get("/v2/app/tags/list").json["tags"]
    assert not redis_client.exists(f"{prefix}:repo:{{ghost}}:tags")


def test_reindex_without_redis_url_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["reindex", "--data-dir", str(tmp_path)], env={"REGISTRY_EXT_REDIS_URL": ""})
    assert result.exit_code == 2
    assert "needs --redis-url" in result.output
