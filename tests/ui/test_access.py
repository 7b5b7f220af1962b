"""The web UI under access control: the login form, its session cookie and CSRF token, and each
page showing only what the caller may pull (the rules of tests/support/auth_helpers.py)."""
from __future__ import annotations

import re

import pytest

from tests.support.auth_helpers import PASSWORDS, basic, client_for, make_app
from tests.support.oci_client import make_image


@pytest.fixture
def app(settings, tmp_path):
    app = make_app(settings, tmp_path)
    alice = client_for(app, basic("alice"))
    make_image(alice, "public/tools", tag="1.0")
    make_image(alice, "ci/app", tag="1.0")
    make_image(client_for(app, basic("bob")), "secret/keys", tag="1.0")
    return app


def csrf_of(body: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', body).group(1)


def log_in(client, user: str, password: str | None = None):
    form = client.get("/ui/login")
    assert form.status_code == 200
    return client.post("/ui/login", data={"user": user, "password": password or PASSWORDS[user],
                                          "csrf": csrf_of(form.get_data(as_text=True))})


def repositories(client) -> list[str]:
    resp = client.get("/ui/")
    assert resp.status_code == 200
    return re.findall(r'href="/ui/repo/([^"]+)">', resp.get_data(as_text=True))


def test_anonymous_sees_only_what_anonymous_may_pull(app):
    client = client_for(app)
    assert repositories(client) == ["public/tools"]
    assert client.get("/ui/repo/public/tools").status_code == 200
    assert client.get("/ui/repo/public/tools/_tag/1.0").status_code == 200
    for url in ("/ui/repo/ci/app", "/ui/repo/ci/app/_tag/1.0", "/ui/repo/secret/keys"):
        resp = client.get(url)
        assert resp.status_code == 404 and "NAME_UNKNOWN" in resp.get_data(as_text=True)


def test_login_gives_a_signed_strict_session(app):
    client = client_for(app)
    resp = log_in(client, "robot")
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/"
    cookie = next(v for v in resp.headers.getlist("Set-Cookie") if v.startswith("regext_ui="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is Secure (next test)
    assert repositories(client) == ["ci/app", "public/tools"]
    assert client.get("/ui/repo/ci/app/_tag/1.0").status_code == 200
    assert client.get("/ui/repo/secret/keys").status_code == 404
    assert "Signed in as <strong>robot</strong>" in client.get("/ui/").get_data(as_text=True)


def test_session_cookie_is_secure_over_tls(app):
    client = client_for(app)
    form = client.get("/ui/login", base_url="https://localhost")
    resp = client.post("/ui/login", base_url="https://localhost",
                       data={"user": "bob", "password": PASSWORDS["bob"],
                             "csrf": csrf_of(form.get_data(as_text=True))})
    assert resp.status_code == 303
    assert all("; Secure" in v for v in resp.headers.getlist("Set-Cookie"))


def test_wrong_password_missing_csrf_and_forged_cookie_are_refused(app):
    client = client_for(app)
    wrong = log_in(client, "alice", "nope")
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.get_data(as_text=True)
    assert not any(v.startswith("regext_ui=") and "Max-Age=0" not in v for v in wrong.headers.getlist("Set-Cookie"))
    no_csrf = client_for(app).post("/ui/login", data={"user": "alice", "password": PASSWORDS["alice"]})
    assert no_csrf.status_code == 400 and "form expired" in no_csrf.get_data(as_text=True)
    forged = client_for(app)
    forged.set_cookie("regext_ui", "eyJrIjoidWktc2Vzc2lvbiIsInUiOiJhbGljZSJ9.00", path="/ui/")
    assert repositories(forged) == ["public/tools"]


def test_a_feed_token_is_not_a_session(app):
    """Cursors and hand-off tokens are signed with the same key: only a session document logs in."""
    from registry_ext.services.feed_codec import sign_token

    with app.app_context():
        token = sign_token(app.extensions["registry"].feed.identity, {"u": "alice"}, 60)
    client = client_for(app)
    client.set_cookie("regext_ui", token, path="/ui/")
    assert repositories(client) == ["public/tools"]


def test_logout_needs_the_csrf_token(app):
    client = client_for(app)
    log_in(client, "alice")
    assert client.post("/ui/logout").status_code == 400
    assert repositories(client) == ["ci/app", "public/tools"]
    body = client.get("/ui/").get_data(as_text=True)
    resp = client.post("/ui/logout", data={"csrf": csrf_of(body)})
    assert resp.status_code == 303
    assert repositories(client) == ["public/tools"]


def test_failed_logins_are_throttled(app):
    client = client_for(app, address="192.0.2.9")
    statuses = [log_in(client, "alice", f"wrong-{i}").status_code for i in range(21)]
    assert statuses == [401] * 20 + [429]  # auth.failures_per_address = 20, as for Basic credentials
