"""Where mirror-diff sends credentials and which redirects it follows, through the API and the CLI.

Real HTTP servers on loopback: the remote registry is configured as
``http://localhost:P``; "another origin" is a second server on 127.0.0.2
(the same machine, another origin). Each server records every request, so
the tests assert exactly which requests carried ``Authorization``.
"""
from __future__ import annotations

import base64
import json

import pytest
from click.testing import CliRunner

from tests.support.fake_remote import FakeRemote
from registry_ext import create_app
from registry_ext.cli import main
from registry_ext.config import replace

D1 = f"sha256:{'1' * 64}"
MT = "application/vnd.oci.image.manifest.v1+json"
BASIC = "Basic " + base64.b64encode(b"bob:secret").decode()


def registry_requiring(token: str):
    """A registry whose `app` repository needs ``Bearer <token>``; the challenge names ``realm``."""
    def handler(method, path, headers):
        if headers.get("Authorization") != f"Bearer {token}":
            return 401, {"WWW-Authenticate": f'Bearer realm="{handler.realm}",service="fake"'}, \
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        if path.startswith("/v2/app/tags/list"):
            return 200, {}, {"name": "app", "tags": ["v1"]}
        return 200, {"Docker-Content-Digest": D1, "Content-Type": MT}, b""
    handler.realm = ""
    return handler


def token_service(method, path, headers):
    """Gives the real token for bob's password and an anonymous one otherwise."""
    token = "private" if headers.get("Authorization") == BASIC else "anonymous"
    return 200, {}, {"token": token}


@pytest.fixture
def mirror_api(settings):
    """``api(remotes)`` -> a test client of an app with these ``[mirror] remotes`` (no answer cache)."""
    def make(**remotes):
        app = create_app(replace(settings, "mirror", remotes=remotes, cache_seconds=0))
        return app.test_client()
    return make


def compare(client, remote: str) -> dict:
    resp = client.get(f"/v2/app/_regext/mirror-diff?remote={remote}")
    assert resp.status_code == 200, resp.data
    return resp.json


def authorizations(fake: FakeRemote) -> list[str | None]:
    return [headers.get("Authorization") for _m, _p, headers in fake.requests]


def test_credentials_go_to_a_foreign_realm_only_when_it_is_configured(mirror_api):
    registry = registry_requiring("private")
    with FakeRemote(registry, host="localhost") as remote, FakeRemote(token_service, host="127.0.0.2") as auth:
        registry.realm = f"{auth.url}/token"
        secret = {"url": remote.url, "username": "bob", "password": "secret", "timeout": 5}
        api = mirror_api(withheld=dict(secret), configured=dict(secret, realm=f"{auth.url}/token"))

        doc = compare(api, "withheld")
        assert authorizations(auth) == [None]  # the token was asked for anonymously
        assert "account=" not in auth.requests[0][1]
        [error] = doc["repositories"][0]["errors"]
        assert "HTTP 401 unauthorized (UNAUTHORIZED)" in error
        assert (f'the credentials were not sent to the token realm {auth.url}/token (not the remote\'s origin): '
                f'configure realm = "{auth.url}/token" for this remote to allow it') in error

        auth.requests.clear()
        remote.requests.clear()
        doc = compare(api, "configured")
        assert doc["repositories"][0]["errors"] == [] and doc["counts"]["only_b"] == 1
        assert authorizations(auth) == [BASIC] and "account=bob" in auth.requests[0][1]
        # the password never reached the registry itself: it saw no credentials, then the token
        assert set(authorizations(remote)) == {None, "Bearer private"}


def test_a_realm_on_the_remotes_origin_gets_the_credentials(mirror_api):
    registry = registry_requiring("private")

    def handler(method, path, headers):
        if path.startswith("/token"):
            return token_service(method, path, headers)
        return registry(method, path, headers)

    with FakeRemote(handler, host="localhost") as remote:
        registry.realm = f"{remote.url}/token"
        api = mirror_api(up={"url": remote.url, "username": "bob", "password": "secret", "timeout": 5})
        assert compare(api, "up")["repositories"][0]["errors"] == []
    assert [h.get("Authorization") for _m, p, h in remote.requests if p.startswith("/token")] == [BASIC]


def test_same_origin_redirects_are_followed_with_credentials_others_refused(mirror_api):
    def elsewhere(method, path, headers):
        return 200, {}, {"name": "app", "tags": ["leaked"]}

    with FakeRemote(elsewhere, host="127.0.0.2") as other:
        def handler(method, path, headers):
            if headers.get("Authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="fake"'}, b""
            if path.startswith("/v2/app/tags/list") and "moved=1" not in path:
                return 307, {"Location": "/v2/app/tags/list?n=10000&moved=1"}, b""
            if path.startswith("/v2/app/tags/list"):
                return 302, {"Location": f"{other.url}/v2/app/tags/list"}, b""
            return 200, {"Docker-Content-Digest": D1, "Content-Type": MT}, b""

        with FakeRemote(handler, host="localhost") as remote:
            api = mirror_api(up={"url": remote.url, "username": "bob", "password": "secret", "timeout": 5})
            doc = compare(api, "up")
        [error] = doc["repositories"][0]["errors"]
        assert error == (f"B: GET /v2/app/tags/list?n=10000&moved=1: redirect to another origin "
                         f"(http://127.0.0.2:{other.port}) refused: only the remote's own origin is followed")
        assert other.requests == []  # never dialled: no answer of another host can reach the report
        assert "leaked" not in json.dumps(doc)
        assert remote.paths() == ["/v2/app/tags/list?n=10000", "/v2/app/tags/list?n=10000",
                                  "/v2/app/tags/list?n=10000&moved=1"]
        assert authorizations(remote) == [None, BASIC, BASIC]  # the same-origin hop kept the credentials


def test_a_redirect_loop_stops(mirror_api):
    with FakeRemote(lambda m, p, h: (302, {"Location": p}, b""), host="localhost") as remote:
        doc = compare(mirror_api(up={"url": remote.url, "timeout": 5}), "up")
    assert doc["repositories"][0]["errors"] == ["B: GET /v2/app/tags/list?n=10000: more than 5 redirects"]
    assert len(remote.requests) == 6


@pytest.mark.parametrize("realm, host, address, network", [
    ("http://169.254.169.254/latest/api/token", "169.254.169.254", "169.254.169.254", "169.254.0.0/16"),
    ("http://10.1.2.3/token", "10.1.2.3", "10.1.2.3", "10.0.0.0/8"),
    ("https://192.168.1.1:8443/token", "192.168.1.1", "192.168.1.1", "192.168.0.0/16"),
    ("http://172.20.0.1/token", "172.20.0.1", "172.20.0.1", "172.16.0.0/12"),
    ("http://[::1]:5000/token", "::1", "::1", "::1/128"),  # loopback, but not the remote's network (127/8)
    ("http://[::ffff:10.0.0.1]/token", "::ffff:10.0.0.1", "::ffff:10.0.0.1", "10.0.0.0/8"),  # IPv4-mapped
    ("http://[2002:a9fe:a9fe::]/token", "2002:a9fe:a9fe::", "2002:a9fe:a9fe::", "169.254.0.0/16"),  # 6to4
    ("http://[fd00::1]/token", "fd00::1", "fd00::1", "fc00::/7"),
    ("http://0.0.0.0:5000/token", "0.0.0.0", "0.0.0.0", "0.0.0.0/8"),
    ("http://224.0.0.1/token", "224.0.0.1", "224.0.0.1", "224.0.0.0/4"),
])
def test_an_internal_realm_is_refused_before_any_connection(mirror_api, realm, host, address, network):
    """A remote on 127.0.0.1 names a token realm in another internal network: refused, and said why."""
    registry = registry_requiring("private")
    registry.realm = realm
    with FakeRemote(registry) as remote:
        doc = compare(mirror_api(up={"url": remote.url, "timeout": 1}), "up")
    [error] = doc["repositories"][0]["errors"]
    assert f"token realm {realm.split('/')[0]}//{realm.split('/')[2]}" in error
    assert f"refused: {address} is an internal address ({network}) outside the remote's own network" in error
    assert doc["repositories"][0]["status"] == "error"


def test_a_realm_named_by_a_host_name_is_resolved_and_checked(mirror_api):
    """A remote on [::1] names a realm on `localhost` (127.0.0.1): another internal network."""
    registry = registry_requiring("private")
    with FakeRemote(registry, host="::1") as remote, FakeRemote(token_service) as auth:
        registry.realm = f"http://localhost:{auth.port}/token"
        doc = compare(mirror_api(up={"url": remote.url, "timeout": 5}), "up")
    assert doc["repositories"][0]["errors"] == [
        f"B: token realm http://localhost:{auth.port} refused: localhost resolves to 127.0.0.1, an internal "
        "address (127.0.0.0/8) outside the remote's own network"]
    assert auth.requests == []


def test_a_realm_in_the_remotes_own_network_is_allowed(mirror_api):
    """127.0.0.2 is another origin but in the remote's own network (127.0.0.0/8): asked, anonymously."""
    registry = registry_requiring("anonymous")
    with FakeRemote(registry) as remote, FakeRemote(token_service, host="127.0.0.2") as auth:
        registry.realm = f"{auth.url}/token"
        doc = compare(mirror_api(up={"url": remote.url, "timeout": 5}), "up")
    assert doc["repositories"][0]["errors"] == [] and len(auth.requests) == 1


def test_cli_realm_option_and_hint():
    registry = registry_requiring("private")
    with FakeRemote(registry, host="localhost") as remote, FakeRemote(token_service, host="127.0.0.2") as auth:
        registry.realm = f"{auth.url}/token"
        args = ["mirror-diff", remote.url, remote.url, "--repo", "app", "--username", "bob", "--password-stdin",
                "--format", "json", "--retries", "0"]
        result = CliRunner().invoke(main, args, input="secret\n")
        assert result.exit_code == 2
        errors = json.loads(result.output)["repositories"][0]["errors"]
        assert len(errors) == 2 and all(f'configure realm = "{auth.url}/token"' in e for e in errors)
        assert set(authorizations(auth)) == {None}
        auth.requests.clear()
        result = CliRunner().invoke(main, [*args, "--realm", f"{auth.url}/token"], input="secret\n")
        assert result.exit_code == 0, result.output
        assert set(authorizations(auth)) == {BASIC}
        result = CliRunner().invoke(main, [*args, "--realm", "ftp://x"], input="secret\n")
        assert result.exit_code == 2 and "not an http(s) URL: 'ftp://x'" in result.output


def test_a_realm_host_is_dialled_at_the_address_checked_not_looked_up_again(mirror_api, monkeypatch):
    """DNS rebinding: the realm's name is resolved once, checked, and the token request connects to that
    address. `rebind.invalid` has no DNS answer at all, so the request can only reach the token service on
    127.0.0.2 (the remote's own network, allowed) through the checked address; a second lookup would fail."""
    from registry_ext.mirror import remote as remote_module
    looked_up: list[str] = []
    real = remote_module.resolve

    def answers(host: str, port: int) -> set[str]:
        looked_up.append(host)
        return {"127.0.0.2"} if host == "rebind.invalid" else real(host, port)

    monkeypatch.setattr(remote_module, "resolve", answers)
    registry = registry_requiring("anonymous")
    with FakeRemote(registry) as remote, FakeRemote(token_service, host="127.0.0.2") as auth:
        registry.realm = f"http://rebind.invalid:{auth.port}/token"
        doc = compare(mirror_api(up={"url": remote.url, "timeout": 5}), "up")
    assert doc["repositories"][0]["errors"] == []
    assert looked_up.count("rebind.invalid") == 1 and len(auth.requests) == 1
