"""Flush Redis, run `registry-ext reindex`, and every endpoint answers exactly as before."""
import json

from click.testing import CliRunner

from registry_ext.cli import main
from tests.oci_client import OCI_INDEX, OCI_MANIFEST, descriptor, push_blob_monolithic, put_manifest_ok, sha256_digest


def push_blob(client, name, data):
    push_blob_monolithic(client, name, data)
    return descriptor("application/octet-stream", data)


def push_manifest(client, name, ref, doc, media_type=OCI_MANIFEST):
    body = json.dumps(doc).encode()
    put_manifest_ok(client, name, ref, body, media_type)
    return descriptor(media_type, body)


def populate(client):
    """Two repositories with tags, an untagged manifest, an index, referrers, a moved and a deleted tag."""
    made = {}
    for name in ("app", "team/tool"):
        config = push_blob(client, name, b'{"architecture":"amd64","os":"linux"}')
        images, docs = [], []
        for i in range(4):
            layer = push_blob(client, name, f"layer-{name}-{i}".encode())
            docs.append({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]})
            images.append(push_manifest(client, name, f"1.{i}.0", docs[-1]))
        push_manifest(client, name, "latest", {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                               "config": config, "layers": []})
        push_manifest(client, name, "latest", docs[1])  # the tag moves
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images[:2]}
        push_manifest(client, name, "multi", index, OCI_INDEX)
        sig = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
               "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                          "digest": sha256_digest(b"{}"), "size": 2},
               "layers": [], "subject": images[0], "annotations": {"signed": "yes"}}
        push_manifest(client, name, sha256_digest(json.dumps(sig).encode()), sig)
        assert client.delete(f"/v2/{name}/manifests/1.3.0").status_code == 202
        made[name] = images
    return made


def snapshot(client, made):
    """Every read endpoint's status, headers that matter, and body."""
    paths = ["/v2/_catalog", "/v2/_catalog?n=1", "/v2/_catalog?n=1&last=app"]
    for name, images in made.items():
        paths += [f"/v2/{name}/tags/list", f"/v2/{name}/tags/list?n=2", f"/v2/{name}/tags/list?n=2&last=1.1.0"]
        for image in images:
            paths += [f"/v2/{name}/manifests/{image['digest']}", f"/v2/{name}/referrers/{image['digest']}",
                      f"/v2/{name}/referrers/{image['digest']}?artifactType=application/x.sig"]
        paths += [f"/v2/{name}/manifests/{tag}" for tag in ("1.0.0", "1.3.0", "latest", "multi")]
        paths += [f"/v2/{name}/_regext/tags?sort={sort}&order={order}&n=2"
                  for sort in ("name", "semver", "created", "updated") for order in ("asc", "desc")]
        paths += [f"/v2/{name}/_regext/tags?kind=release", f"/v2/{name}/_regext/tags/1.0.0/newer",
                  f"/v2/{name}/_regext/manifests", f"/v2/{name}/_regext/manifests?n=2",
                  f"/v2/{name}/_regext/orphans", f"/v2/{name}/_oci/tag-history/latest",
                  f"/v2/{name}/_oci/tag-history/1.3.0", f"/v2/{name}/_regext/digests/{images[1]['digest']}/tags",
                  (f"/v2/{name}/tags/list?sort_by=created_at&n=3", {"Accept": OCI_INDEX})]
    out = {}
    for path in paths:
        path, headers = path if isinstance(path, tuple) else (path, {})
        resp = client.get(path, headers=headers)
        out[path, tuple(headers)] = (resp.status_code, resp.headers.get("Link"), resp.headers.get("Content-Type"),
                                     resp.headers.get("Docker-Content-Digest"), resp.headers.get("ETag"), resp.data)
    return out


def redis_dump(redis_client, prefix):
    """Every index key and value (the index marker aside: it records when it was built).

    The update feed's keys (``{feed}`` and each repository's ``events`` stream) are not index
    content: a lost feed is rebuilt from the tag history under a new epoch (tests/test_feed_rebuild.py).
    """
    dump = {}
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        if key == f"{prefix}:{{meta}}".encode() or b"{feed}" in key or b":events" in key:
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
