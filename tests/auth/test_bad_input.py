"""Malformed credentials, bad tokens and odd scopes: each gets its 400/401, and nothing secret is logged."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.auth_helpers import basic, challenge, client_for, make_app
from tests.support.oci_client import assert_error

SECRET_PASSWORD = "alice-pw"


@pytest.fixture
def basic_app(settings, tmp_path):
    return make_app(settings, tmp_path)


@pytest.fixture
def token_app(settings, tmp_path):
    return make_app(settings, tmp_path, scheme="token", clock_skew_seconds=30)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("header, status", [
    ("Basic !!!not-base64!!!", 401),
    ("Basic " + b64(b"alice"), 401),                      # no colon
    ("Basic " + b64(b":alice-pw"), 401),                  # empty user name
    ("Basic " + b64("alice:p\u00e4ss".encode("latin-1")), 401),  # not UTF-8
    ("Basic " + b64(b"alice\xff\xfe:x"), 401),
    ("Basic", 401),
    ("Digest username=\"alice\"", 401),                   # a scheme we do not speak
    ("Bearer abc.def.ghi", 401),                          # Bearer in basic mode
    ("Basic " + "A" * 9000, 400),                         # larger than nginx lets through
])
def test_malformed_basic_headers(basic_app, header, status):
    resp = client_for(basic_app, header).get("/v2/")
    assert_error(resp, status, "UNAUTHORIZED" if status == 401 else "UNSUPPORTED")
    if status == 401:
        assert challenge(resp).startswith("Basic realm=")
    head = client_for(basic_app, header).head("/v2/")
    assert head.status_code == status and head.get_data() == b""


def test_empty_basic_credentials_are_anonymous(basic_app):
    """skopeo and podman send `Basic Og==` (":") when they have no credentials."""
    client = client_for(basic_app, "Basic " + b64(b":"))
    assert client.get("/v2/public/x/tags/list").status_code == 404  # anonymous may pull public/**
    assert_error(client.get("/v2/team/x/tags/list"), 401, "UNAUTHORIZED")
    assert_error(client.get("/v2/"), 401, "UNAUTHORIZED")


def own_key(app):
    return app.extensions["auth"].issuer


def sign_own(app, key=None, *, algorithm="ES256", headers=None, **claims) -> str:
    issuer = own_key(app)
    now = int(time.time())
    body = {"iss": "registry-ext", "sub": "alice", "aud": "registry-ext", "iat": now, "nbf": now,
            "exp": now + 300, "jti": "j1", "access": [{"type": "repository", "name": "team/app",
                                                      "actions": ["pull"]}]}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key or issuer.key, algorithm=algorithm, headers={"kid": issuer.kid, **(headers or {})})


def unsigned(app, alg: str, signature: bytes = b"", **claims) -> str:
    """A token built by hand (PyJWT refuses to make these)."""
    now = int(time.time())
    head = {"alg": alg, "typ": "JWT", "kid": own_key(app).kid}
    body = {"iss": "registry-ext", "sub": "alice", "aud": "registry-ext", "iat": now, "nbf": now,
            "exp": now + 300, "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]}
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()  # noqa: E731
    signing_input = f"{part(head)}.{part(body)}"
    if alg == "HS256":
        signature = hmac.new(signature, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def test_bad_tokens(token_app):
    now = int(time.time())
    public_pem = own_key(token_app).key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    cases = {
        "expired": (sign_own(token_app, exp=now - 31), "token expired"),
        "not yet valid": (sign_own(token_app, nbf=now + 60), "token not yet valid"),
        "other audience": (sign_own(token_app, aud="another-registry"), "token for another audience"),
        "other key": (sign_own(token_app, ec.generate_private_key(ec.SECP256R1())), "bad signature"),
        "alg none": (unsigned(token_app, "none"), "algorithm not allowed"),
        "HS256 with the public key": (unsigned(token_app, "HS256", public_pem), "algorithm not allowed"),
        "no exp": (sign_own(token_app, exp=None), "a required claim is missing"),
        "untrusted issuer": (sign_own(token_app, iss="somebody-else"), "untrusted issuer"),
        "garbage": ("not-a-jwt", "malformed token"),
        "bad access": (sign_own(token_app, access={"type": "repository"}), "access must be a list"),
    }
    for what, (token, reason) in cases.items():
        resp = client_for(token_app, f"Bearer {token}").get("/v2/team/app/tags/list")
        doc = assert_error(resp, 401, "UNAUTHORIZED")
        assert doc["errors"][0]["message"].startswith(f"invalid token: {reason}"), (what, doc)
        assert challenge(resp).endswith(',error="invalid_token"'), what


def test_clock_skew_is_tolerated_up_to_the_setting(token_app):
    now = int(time.time())
    for token in (sign_own(token_app, exp=now - 20), sign_own(token_app, nbf=now + 20, iat=now + 20)):
        assert client_for(token_app, f"Bearer {token}").get("/v2/team/app/tags/list").status_code == 404


def test_a_cached_token_still_expires(token_app):
    token = sign_own(token_app, exp=int(time.time()) - 29)  # valid for one more second (30 s of skew)
    client = client_for(token_app, f"Bearer {token}")
    assert client.get("/v2/team/app/tags/list").status_code == 404
    time.sleep(1.1)
    assert_error(client.get("/v2/team/app/tags/list"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("scope", [
    "repository:Team/App:pull",            # upper case
    "repository:team/../app:pull",
    "repository:**:pull",                  # globs are not names
    "repository:team/*:push",
    "repository::pull",
    "repository:" + "a" * 256 + ":pull",
    "repository:team/app",                 # no actions
    "repository:team/app:",
    "repository:team/app:pull;rm",
    "registry:everything:*",               # unknown type
    "plugin:team/app:pull",
    "repository:t\u00e9am/app:pull",
])
def test_odd_scopes_are_400(token_app, scope):
    resp = client_for(token_app, basic("alice")).get("/auth/token", query_string={"scope": scope})
    assert_error(resp, 400, "UNSUPPORTED")


def test_a_scope_parameter_with_1000_entries_is_400(token_app):
    many = " ".join(f"repository:team/r{i}:pull" for i in range(1000))
    resp = client_for(token_app, basic("alice")).get("/auth/token", query_string={"scope": many})
    doc = assert_error(resp, 400, "UNSUPPORTED")
    assert doc["errors"][0]["detail"] == {"count": 1000}
    many = [("scope", f"repository:team/r{i}:pull") for i in range(31)]
    assert_error(client_for(token_app, basic("alice")).get("/auth/token", query_string=many), 400, "UNSUPPORTED")
    ok = [("scope", f"repository:team/r{i}:pull") for i in range(30)]
    assert client_for(token_app, basic("alice")).get("/auth/token", query_string=ok).status_code == 200


def test_odd_repository_names_in_urls(basic_app):
    alice = client_for(basic_app, basic("alice"))
    assert_error(alice.get("/v2/Team/App/tags/list"), 400, "NAME_INVALID")
    assert_error(client_for(basic_app).get("/v2/a//b/tags/list"), 400, "NAME_INVALID")
    assert_error(client_for(basic_app).get("/v2/" + "a" * 300 + "/tags/list"), 400, "NAME_INVALID")


def test_nothing_secret_is_logged(settings, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token_app = make_app(settings, tmp_path, scheme="token")
    good = client_for(token_app, basic("alice")).get("/auth/token?scope=repository:team/app:pull")
    token = good.get_json()["token"]
    client_for(token_app, basic("alice", "wrong-" + SECRET_PASSWORD)).get("/auth/token")
    client_for(token_app, f"Bearer {token}").get("/v2/team/app/tags/list")
    client_for(token_app, f"Bearer {token}x").get("/v2/team/app/tags/list")
    client_for(token_app, f"Bearer {token}").delete("/v2/team/app/manifests/latest")
    basic_app = make_app(settings, tmp_path)
    client_for(basic_app, basic("alice", "wrong-" + SECRET_PASSWORD)).get("/v2/")
    client_for(basic_app, basic("alice")).get("/v2/")
    logged = caplog.text + (tmp_path / "audit.log").read_text()
    assert "denied" in logged and "alice" in logged
    for secret in (SECRET_PASSWORD, token, token.split(".")[2], b64(f"alice:{SECRET_PASSWORD}".encode())):
        assert secret not in logged
