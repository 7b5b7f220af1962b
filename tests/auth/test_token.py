"""The token scheme: our own /auth/token, the Bearer challenge, scopes, and a trusted external issuer."""
from __future__ import annotations

import os
import stat
import time

import jwt
import pytest

from tests.support.auth_helpers import basic, challenge, client_for, make_app
from tests.support.external_issuer import ISSUER, ExternalIssuer
from tests.support.oci_client import assert_error, body_json, make_image, push_blob, start_upload

REALM = "http://localhost/auth/token"


@pytest.fixture
def app(settings, tmp_path):
    return make_app(settings, tmp_path, scheme="token")


def get_token(app, user: str | None, *scopes: str, service: str = "registry-ext") -> str:
    client = client_for(app, basic(user) if user else None)
    resp = client.get("/auth/token", query_string=[("service", service)] + [("scope", s) for s in scopes])
    assert resp.status_code == 200, resp.get_data()
    body = body_json(resp)
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    assert resp.headers["Cache-Control"] == "no-store"
    return body["token"]


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def bearer(app, token: str):
    return client_for(app, f"Bearer {token}")


def test_challenge_names_realm_service_and_scope(app):
    resp = client_for(app).get("/v2/")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp) == f'Bearer realm="{REALM}",service="registry-ext"'
    resp = client_for(app).post("/v2/team/app/blobs/uploads/")
    assert challenge(resp) == f'Bearer realm="{REALM}",service="registry-ext",scope="repository:team/app:pull,push"'
    assert client_for(app).get("/v2/_catalog").status_code == 200  # anonymous may pull public/**


def test_catalog_challenge_when_anonymous_may_pull_nothing(settings, tmp_path):
    app = make_app(settings, tmp_path, scheme="token", rules=[{"repository": "**", "who": ["*"], "actions": ["pull"]}])
    resp = client_for(app).get("/v2/_catalog")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp) == f'Bearer realm="{REALM}",service="registry-ext",scope="registry:catalog:*"'


def test_token_claims_and_intersection_with_the_rules(app, settings):
    token = get_token(app, "robot", "repository:ci/app:pull,push,delete", "repository:team/x:pull",
                      "repository:public/lib:pull,push")
    body = claims(token)
    assert body["iss"] == "registry-ext" and body["aud"] == "registry-ext" and body["sub"] == "robot"
    assert body["nbf"] == body["iat"] and body["exp"] == body["iat"] + 300 and len(body["jti"]) >= 16
    assert body["access"] == [{"type": "repository", "name": "ci/app", "actions": ["pull", "push"]},
                              {"type": "repository", "name": "public/lib", "actions": ["pull"]}]
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert claims(get_token(app, "robot"))["jti"] != claims(get_token(app, "robot"))["jti"]


def test_push_and_pull_with_tokens(app):
    token = get_token(app, "alice", "repository:team/app:pull,push")
    image = make_image(bearer(app, token), "team/app")
    reader = bearer(app, get_token(app, "alice", "repository:team/app:pull"))
    assert reader.head("/v2/team/app/manifests/latest").headers["Docker-Content-Digest"] == image["manifest"]
    resp = reader.delete(f"/v2/team/app/manifests/{image['manifest']}")
    assert_error(resp, 403, "DENIED")  # alice may delete: the token is just too narrow (RFC 6750 3.1)
    assert challenge(resp) == (f'Bearer realm="{REALM}",service="registry-ext",'
                               f'scope="repository:team/app:delete",error="insufficient_scope"')
    robot = bearer(app, get_token(app, "robot", "repository:team/app:pull,push"))
    resp = start_upload(robot, "team/app")
    assert_error(resp, 403, "DENIED")  # the rules deny robot: no wider token would help
    assert "WWW-Authenticate" not in resp.headers


def test_anonymous_pull_with_and_without_an_anonymous_token(app):
    image = make_image(bearer(app, get_token(app, "alice", "repository:public/lib:pull,push")), "public/lib")
    assert client_for(app).get("/v2/public/lib/manifests/latest").get_data() == image["body"]
    anonymous = get_token(app, None, "repository:public/lib:pull,push", "repository:team/app:pull")
    assert claims(anonymous)["sub"] == ""
    assert claims(anonymous)["access"] == [{"type": "repository", "name": "public/lib", "actions": ["pull"]}]
    client = bearer(app, anonymous)
    assert client.get("/v2/public/lib/manifests/latest").status_code == 200
    assert client.get("/v2/").status_code == 200
    assert_error(start_upload(client, "public/lib"), 401, "UNAUTHORIZED")


def test_catalog_scope(app):
    alice = bearer(app, get_token(app, "alice", "repository:team/a:push,pull", "repository:ci/app:pull,push"))
    make_image(alice, "team/a")
    make_image(alice, "ci/app")
    bob = bearer(app, get_token(app, "bob", "repository:secret/b:pull,push"))
    make_image(bob, "secret/b")
    admin = get_token(app, "admin", "registry:catalog:*")
    assert claims(admin)["access"] == [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert body_json(bearer(app, admin).get("/v2/_catalog"))["repositories"] == ["ci/app", "secret/b", "team/a"]
    robot = get_token(app, "robot", "registry:catalog:*")
    assert claims(robot)["access"] == []
    assert body_json(bearer(app, robot).get("/v2/_catalog"))["repositories"] == ["ci/app"]


def test_mount_with_a_token_needs_pull_on_the_source(app):
    alice = bearer(app, get_token(app, "alice", "repository:team/src:pull,push"))
    digest = push_blob(alice, "team/src", b"mountable")
    robot = bearer(app, get_token(app, "robot", "repository:ci/app:pull,push", "repository:team/src:pull"))
    assert start_upload(robot, "ci/app", mount=digest, **{"from": "team/src"}).status_code == 202
    both = bearer(app, get_token(app, "alice", "repository:ci/app:pull,push", "repository:team/src:pull"))
    assert start_upload(both, "ci/app", mount=digest, **{"from": "team/src"}).status_code == 201


def test_signing_key_is_generated_once_with_mode_0600(app, settings, tmp_path):
    path = tmp_path / "data" / "auth" / "token-signing-key.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_bytes()
    token = get_token(app, "alice")
    second_app = make_app(settings, tmp_path, scheme="token")  # another worker on the same storage root
    assert path.read_bytes() == first
    assert bearer(second_app, token).get("/v2/").status_code == 200


def test_token_endpoint_errors(app):
    resp = client_for(app, basic("alice", "wrong")).get("/auth/token?service=registry-ext")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp).startswith("Basic realm=")
    assert_error(client_for(app).get("/auth/token?service=other"), 400, "UNSUPPORTED")
    assert_error(client_for(app, basic("alice")).post("/auth/token"), 405, "UNSUPPORTED")
    assert_error(client_for(app, f"Bearer {get_token(app, 'alice')}").get("/auth/token"), 401, "UNAUTHORIZED")


def test_basic_credentials_are_not_accepted_on_v2_in_token_mode(app):
    resp = client_for(app, basic("alice")).get("/v2/")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp).startswith("Bearer realm=")


# -- a trusted external issuer ---------------------------------------------------------------------

@pytest.fixture
def external():
    return ExternalIssuer("registry-ext")


def external_app(settings, tmp_path, external: ExternalIssuer, how: str = "public_key", **extra):
    path = tmp_path / ("ext.pem" if how == "public_key" else "ext-jwks.json")
    path.write_bytes(external.public_pem()) if how == "public_key" else path.write_text(external.jwks())
    return make_app(settings, tmp_path, scheme="token",
                    trusted_issuers=[{"issuer": ISSUER, how: str(path)}], **extra)


@pytest.mark.parametrize("how", ["public_key", "jwks"])
def test_external_tokens_are_accepted_only_with_the_key_configured(settings, tmp_path, external, how):
    token = external.sign(access=[{"type": "repository", "name": "ext/app", "actions": ["pull", "push"]}])
    plain = make_app(settings, tmp_path, scheme="token")
    resp = bearer(plain, token).get("/v2/")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp).endswith(',error="invalid_token"')
    app = external_app(settings, tmp_path, external, how)
    client = bearer(app, token)
    make_image(client, "ext/app")
    assert client.get("/v2/ext/app/tags/list").status_code == 200
    resp = start_upload(client, "ext/other")
    assert_error(resp, 403, "DENIED")  # we cannot know the issuer's rules: ask it for that scope
    assert challenge(resp).endswith(',scope="repository:ext/other:pull,push",error="insufficient_scope"')
    assert body_json(client.get("/v2/_catalog"))["repositories"] == ["ext/app"]  # its claims, not our rules


def test_external_es256_and_key_rotation_through_the_jwks_file(settings, tmp_path):
    old = ExternalIssuer("registry-ext", kind="ec", kid="old")
    app = external_app(settings, tmp_path, old, "jwks")
    assert bearer(app, old.sign()).get("/v2/").status_code == 200
    new = ExternalIssuer("registry-ext", kind="rsa", kid="new")
    jwks = tmp_path / "ext-jwks.json"
    jwks.write_text(new.jwks())
    os.utime(jwks, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    verifier = app.extensions["auth"].verifier
    verifier.trusted[ISSUER]._next_check = 0  # the next look happens now, not in a second
    assert bearer(app, new.sign()).get("/v2/").status_code == 200
    assert_error(bearer(app, old.sign(subject="other")).get("/v2/"), 401, "UNAUTHORIZED")
