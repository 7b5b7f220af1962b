"""Helpers for the update feed tests: an app with feed settings, polls, and tags that can be moved cheaply."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.oci_client import OCI_CONFIG, OCI_MANIFEST, descriptor, push_blob, put_manifest_ok

CONFIG = b'{"os":"linux","architecture":"amd64"}'


def app_with(settings, **feed):
    """An app on ``settings``' storage root and key prefix with these ``feed`` settings."""
    data = {"storage": {"root": settings.storage.root},
            "redis": {"url": settings.redis.url, "key_prefix": settings.redis.key_prefix}, "feed": feed}
    return create_app(load_settings(data=data, environ={}))


def updates(client, expect: int = 200, headers: dict | None = None, **params):
    """GET /v2/_regext/updates with ``params`` (a list value repeats the parameter)."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, item))
    resp = client.get(f"/v2/_regext/updates?{urlencode(pairs)}", headers=headers or {})
    assert resp.status_code == expect, resp.get_data()
    return resp


def cursor_now(client, **params) -> str:
    return updates(client, **params).json["next"]


def events(resp) -> list[tuple]:
    """(repository, tag, action, digest, previous) of each event of a page."""
    return [(e["repository"], e["tag"], e["action"], e["digest"], e["previous"]) for e in resp.json["events"]]


def manifests(client, name: str, count: int) -> list[tuple[bytes, str]]:
    """``count`` distinct small manifests pushed by digest into ``name``: (bytes, digest)."""
    push_blob(client, name, CONFIG)
    out = []
    for i in range(count):
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, CONFIG),
                           "layers": [], "annotations": {"i": str(i)}}).encode()
        out.append((body, put_manifest_ok(client, name, "sha256:" + __import__("hashlib").sha256(body).hexdigest(),
                                          body)))
    return out


def tag(client, name: str, tag_name: str, manifest: tuple[bytes, str]) -> str:
    """Point ``tag_name`` at a manifest pushed before; returns its digest."""
    put_manifest_ok(client, name, tag_name, manifest[0])
    return manifest[1]
