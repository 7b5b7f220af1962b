"""Who is browsing the UI: a signed session cookie from the login form, else anonymous.

The cookie holds the user name, signed (HMAC-SHA256) with the registry's
key (storage/identity.py) and valid for ``SESSION_SECONDS``; it is
HttpOnly, SameSite=Strict, and Secure when the request came over TLS
(``server.trusted_proxies`` makes nginx's X-Forwarded-Proto count). The
login form carries a CSRF token: the MAC of a random value also sent as a
cookie (double submit), checked before any password is.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, g, request
from werkzeug.wrappers import Response as WzResponse

from registry_ext.api.http import registry
from registry_ext.auth.core import ANONYMOUS, Auth, Caller
from registry_ext.services.feed_codec import sign_token, verify_token

SESSION_COOKIE = "regext_ui"
CSRF_COOKIE = "regext_ui_csrf"
SESSION_SECONDS = 12 * 3600
_KIND = "ui-session"


def auth() -> Auth | None:
    return current_app.extensions.get("auth")


def caller() -> Caller:
    """The logged-in user of this request, else anonymous (also when auth is off)."""
    if auth() is None:
        return ANONYMOUS
    doc = verify_token(registry().feed.identity, request.cookies.get(SESSION_COOKIE, "")[:1024])
    if not doc or doc.get("k") != _KIND or not isinstance(doc.get("u"), str):
        return ANONYMOUS
    return Caller(doc["u"], "basic")


def may_pull(name: str) -> bool:
    found = auth()
    return found is None or "pull" in found.allowed(caller(), name)


def start_session(resp: WzResponse, user: str) -> None:
    token = sign_token(registry().feed.identity, {"k": _KIND, "u": user}, SESSION_SECONDS)
    _cookie(resp, SESSION_COOKIE, token, SESSION_SECONDS)


def end_session(resp: WzResponse) -> None:
    _cookie(resp, SESSION_COOKIE, "", 0)


def csrf_token(resp_cookies: dict[str, str]) -> str:
    """The form's token; puts a fresh random value in ``resp_cookies`` when the request has none."""
    nonce = g.get("ui_csrf_nonce") or request.cookies.get(CSRF_COOKIE, "")
    if len(nonce) != 32:
        nonce = g.ui_csrf_nonce = secrets.token_hex(16)
    if nonce != request.cookies.get(CSRF_COOKIE):
        resp_cookies[CSRF_COOKIE] = nonce
    return _mac(nonce)


def csrf_ok() -> bool:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get("csrf", "")
    return len(nonce) == 32 and hmac.compare_digest(sent, _mac(nonce))


def set_cookies(resp: WzResponse, cookies: dict[str, str]) -> None:
    for name, value in cookies.items():
        _cookie(resp, name, value, SESSION_SECONDS)


def _mac(nonce: str) -> str:
    return hmac.new(registry().feed.identity.key, b"ui-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def _cookie(resp: WzResponse, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(name, value, max_age=max_age, path="/ui/", httponly=True, samesite="Strict",
                    secure=request.is_secure)
