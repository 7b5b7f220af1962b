"""Rules (globs, first match, anonymous), [auth] validation, the serve warning, and the guard that every
endpoint declares the access it needs."""
from __future__ import annotations

import pytest
from flask import Blueprint

from registry_ext import create_app
from registry_ext.auth import gate
from registry_ext.auth.rules import compile_glob, compile_rules
from registry_ext.auth.scopes import NEEDS, undeclared
from registry_ext.config import ConfigError, load_settings, replace
from registry_ext.serve import open_access_warning
from tests.support.auth_helpers import make_app


@pytest.mark.parametrize("glob, matches, misses", [
    ("team/*", ["team/app", "team/a-b"], ["team", "team/a/b", "teamx/app"]),
    ("team/**", ["team/app", "team/a/b/c"], ["team", "teams/app"]),
    ("**", ["a", "a/b/c"], []),
    ("*/app", ["x/app"], ["app", "x/y/app"]),
    ("lib?", ["lib1", "liba"], ["lib", "lib12", "lib/"]),
    ("a.b", ["a.b"], ["axb"]),  # dots are literal
])
def test_globs(glob, matches, misses):
    pattern = compile_glob(glob)
    assert all(pattern.fullmatch(name) for name in matches)
    assert not any(pattern.fullmatch(name) for name in misses)


def test_first_matching_rule_decides_and_anonymous_adds():
    rules = compile_rules([
        {"repository": "pub/**", "who": ["anonymous"], "actions": ["pull"]},
        {"repository": "pub/**", "who": ["group:writers"], "actions": ["push"]},
        {"repository": "**", "who": ["carl"], "actions": []},
        {"repository": "**", "who": ["*"], "actions": ["pull", "delete"]},
    ], {"writers": ["wendy"]})
    assert rules.actions(None, "pub/x") == {"pull"}
    assert rules.actions(None, "priv/x") == set()
    assert rules.actions("wendy", "pub/x") == {"pull", "push"}  # push from her rule, pull from anonymous
    assert rules.actions("wendy", "priv/x") == {"pull", "delete"}
    assert rules.actions("carl", "priv/x") == set()  # denied before the `*` rule
    assert rules.actions("carl", "pub/x") == {"pull"}  # ... yet keeps what anonymous has
    assert rules.anonymous_pulls_somewhere()


@pytest.mark.parametrize("auth, message", [
    ({"scheme": "ldap"}, "auth.scheme: must be none, basic or token"),
    ({"scheme": "basic"}, "auth.htpasswd: required"),
    ({"rules": [{"repository": "A/**", "who": ["x"], "actions": ["pull"]}]}, "repository glob 'A/\\*\\*'"),
    ({"rules": [{"repository": "a", "who": ["x"], "actions": ["read"]}]}, "unknown action 'read'"),
    ({"rules": [{"repository": "a", "who": ["group:nope"], "actions": []}]}, "group 'nope' is not defined"),
    ({"rules": [{"repository": "a", "who": "x", "actions": []}]}, "must be a list of strings"),
    ({"rules": [{"repository": "a", "actions": []}]}, "exactly repository, who and actions"),
    ({"catalog": ["bad name"]}, "auth.catalog: 'bad name' is not a user name"),
    ({"clock_skew_seconds": 3600}, "auth.clock_skew_seconds: must be 0-300"),
    ({"token_ttl_seconds": 5}, "auth.token_ttl_seconds: must be 30-3600"),
    ({"service": 'a"b'}, "auth.service: 1-200 characters, no quotes"),
    ({"token_realm": "ftp://x"}, "auth.token_realm: empty or an http"),
    ({"scheme": "token", "token_issuer": False}, "needs token_issuer = true or trusted_issuers"),
    ({"trusted_issuers": [{"issuer": "x", "public_key": "a", "jwks": "b"}]}, "exactly one of public_key"),
    ({"trusted_issuers": [{"issuer": "registry-ext", "jwks": "b"}]}, "given twice"),
])
def test_invalid_auth_settings(auth, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(data={"auth": auth}, environ={})


def test_every_endpoint_declares_its_access(settings, tmp_path):
    full = replace(settings, "mirror", remotes={"up": {"url": "http://127.0.0.1:9"}})
    app = make_app(full, tmp_path, scheme="token")
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert undeclared(app) == []
    assert "token.get_token" in endpoints and "metrics.prometheus" in endpoints
    assert undeclared(create_app(settings)) == []  # auth off: the same routes must be declared too
    stale = sorted(set(NEEDS) - endpoints)
    assert stale == [], f"rows in NEEDS for endpoints that no longer exist: {stale}"


def test_an_undeclared_endpoint_stops_the_app(settings, tmp_path):
    app = make_app(settings, tmp_path)
    extra = Blueprint("feed", __name__)
    extra.add_url_rule("/v2/_regext/updates", "updates", lambda: "")
    app.register_blueprint(extra)
    with pytest.raises(RuntimeError, match=r"\['feed.updates'\]"):
        gate.init_app(app, app.extensions["auth"])


@pytest.mark.parametrize("host, warns", [("127.0.0.1", False), ("::1", False), ("[::1]", False),
                                         ("localhost", False), ("0.0.0.0", True), ("::", True),
                                         ("10.1.2.3", True), ("registry.internal", True)])
def test_serve_warns_about_open_access_beyond_loopback(host, warns, tmp_path):
    settings = load_settings(data={"server": {"host": host}}, environ={})
    warning = open_access_warning(settings)
    assert (warning is not None) == warns
    if warns:
        assert "\n" not in warning and "without authentication" in warning
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("")
    secured = load_settings(data={"server": {"host": host}, "auth": {"scheme": "basic", "htpasswd": str(htpasswd)}},
                            environ={})
    assert open_access_warning(secured) is None
