"""What the recovery, reindex and feed-rebuild tests share.

An app on its own storage root and key prefix, a maintenance tick run
directly, the findings of ``registry-ext check``, and two repositories
populated with every kind of object with a snapshot of every read endpoint,
to compare a registry's answers before and after a fault.
"""
from __future__ import annotations

import json
import uuid

from click.testing import CliRunner

from registry_ext import create_app
from registry_ext.cli import main
from registry_ext.config import load_settings
from registry_ext.services.maintenance import Maintenance
from tests.support.oci_client import (OCI_INDEX, OCI_MANIFEST, descriptor, push_blob_monolithic, put_manifest_ok,
                                      sha256_digest)


def app_for(tmp_path, url, **testing):
    """An app on its own storage root and key prefix (the session Redis is shared by all tests)."""
    settings = load_settings(data={"storage": {"root": str(tmp_path / "data")},
                                   "redis": {"url": url, "key_prefix": f"rec{uuid.uuid4().hex[:10]}"},
                                   "testing": testing}, environ={})
    return create_app(settings)


def maintenance(app) -> Maintenance:
    return Maintenance(app.extensions["registry"], 1000)


def check_findings(app) -> list:
    settings = app.config["SETTINGS"]
    result = CliRunner().invoke(main, ["check", "--data-dir", settings.storage.root,
                                       "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix])
    return json.loads(result.output)["findings"]


def _push_blob(client, name, data):
    push_blob_monolithic(client, name, data)
    return descriptor("application/octet-stream", data)


def _push_manifest(client, name, ref, doc, media_type=OCI_MANIFEST):
    body = json.dumps(doc).encode()
    put_manifest_ok(client, name, ref, body, media_type)
    return descriptor(media_type, body)


def populate(client):
    """Two repositories with tags, an untagged manifest, an index, referrers, a moved and a deleted tag."""
    made = {}
    for name in ("app", "team/tool"):
        config = _push_blob(client, name, b'{"architecture":"amd64","os":"linux"}')
        images, docs = [], []
        for i in range(4):
            layer = _push_blob(client, name, f"layer-{name}-{i}".encode())
            docs.append({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]})
            images.append(_push_manifest(client, name, f"1.{i}.0", docs[-1]))
        _push_manifest(client, name, "latest", {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                               "config": config, "layers": []})
        _push_manifest(client, name, "latest", docs[1])  # the tag moves
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images[:2]}
        _push_manifest(client, name, "multi", index, OCI_INDEX)
        sig = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
               "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                          "digest": sha256_digest(b"{}"), "size": 2},
               "layers": [], "subject": images[0], "annotations": {"signed": "yes"}}
        _push_manifest(client, name, sha256_digest(json.dumps(sig).encode()), sig)
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
        data, etag = without_pulls(resp.data), resp.headers.get("ETag")
        out[path, tuple(headers)] = (resp.status_code, resp.headers.get("Link"), resp.headers.get("Content-Type"),
                                     resp.headers.get("Docker-Content-Digest"),
                                     etag if data == resp.data else "(pull counts left out)", data)
    return out


def without_pulls(data: bytes) -> bytes:
    """A listing body without its pull counts (``pulls`` fields, the ``...pull.*`` annotations).

    The snapshot's own manifest GETs count pulls, and pull counts are statistics that a
    rebuilt index does not have (docs/extensions.md#pull-counts): they are compared apart.
    """
    try:
        doc = json.loads(data)
    except ValueError:
        return data

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k != "pulls" and not k.startswith("org.opencontainers.image.pull.")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    stripped = strip(doc)
    return data if stripped == doc else json.dumps(stripped, sort_keys=True).encode()
