"""An upstream with token auth (our own registry, [auth] scheme = "token", served on loopback).

The mirror's credentials buy a token from the upstream's own realm; when the upstream names a realm
on another host, that host is asked anonymously and never sees the credentials.
"""
from __future__ import annotations

import base64

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from tests.support.auth_helpers import PASSWORDS, make_app
from tests.support.mirror_upstreams import mirror_app, AppServer, Recorder, make_image
from tests.support.oci_client import assert_error, push_blob, put_manifest_ok

IMAGE = make_image("private")


@pytest.fixture
def upstream_settings(settings, tmp_path):
    """Settings of the upstream: its own storage root and key prefix, seeded with private/app:latest."""
    up = replace(replace(settings, "storage", root=str(tmp_path / "upstream")),
                 "redis", key_prefix=settings.redis.key_prefix + "up")
    seeder = create_app(up).test_client()
    push_blob(seeder, "private/app", IMAGE.config)
    push_blob(seeder, "private/app", IMAGE.layer)
    put_manifest_ok(seeder, "private/app", "latest", IMAGE.manifest, IMAGE.media_type)
    return up


def serve(upstream_settings, tmp_path, **auth) -> AppServer:
    folder = tmp_path / "up-auth"
    folder.mkdir(exist_ok=True)
    return AppServer(make_app(upstream_settings, folder, scheme="token", **auth))


def mirror(settings, url: str):
    upstream = {"hosts": ["tok.example"], "urls": [url], "username": "alice", "password": PASSWORDS["alice"],
                "timeout": 5, "max_retries": 0}
    app = mirror_app(settings, {"tok": upstream})
    return app.test_client()


def test_credentials_buy_a_token_from_the_upstreams_own_realm(settings, upstream_settings, tmp_path):
    server = serve(upstream_settings, tmp_path)
    try:
        anonymous = create_app(replace(settings, "proxy", upstreams={"anon": {
            "hosts": ["anon.example"], "urls": [server.url], "timeout": 5, "max_retries": 0}})).test_client()
        refused = anonymous.get("/v2/private/app/manifests/latest?ns=anon.example")
        assert_error(refused, 502, "UNSUPPORTED")  # the upstream refuses anonymous pulls of private/**
        resp = mirror(settings, server.url).get("/v2/private/app/manifests/latest?ns=tok.example")
        assert resp.status_code == 200 and resp.data == IMAGE.manifest
    finally:
        server.stop()


def test_credentials_never_go_to_a_realm_on_another_host(settings, upstream_settings, tmp_path):
    recorder = Recorder()
    server = serve(upstream_settings, tmp_path, token_realm=f"{recorder.url}/token")
    try:
        resp = mirror(settings, server.url).get("/v2/private/app/manifests/latest?ns=tok.example")
        assert_error(resp, 502, "UNSUPPORTED")
        assert "were not sent to the token realm" in resp.json["errors"][0]["detail"]["reason"]
    finally:
        server.stop()
        recorder.stop()
    assert recorder.seen, "the realm was asked (anonymously)"
    secret = base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
    for _method, path, headers in recorder.seen:
        assert "Authorization" not in headers and "authorization" not in {k.lower() for k in headers}
        assert PASSWORDS["alice"] not in path and secret not in str(headers) and "account=" not in path
