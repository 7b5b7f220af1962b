"""The one hook that authorises every request before its view, and the audit after it.

``init_app`` registers it after every blueprint, so it can refuse to start
when an endpoint has no row in auth/scopes.py's ``NEEDS``. Answers:

- no or unusable credentials where some are needed: 401 ``UNAUTHORIZED``
  with the challenge (``Basic realm=...``, or ``Bearer realm=...,
  service=...,scope=...``, with ``error="invalid_token"`` for a bad token and
  ``error="insufficient_scope"`` for a token lacking the scope);
- authenticated but not allowed: 403 ``DENIED``; when a token lacks a scope
  its user might get (a token of ours whose user the rules allow, or any
  external token), the 403 carries the challenge with
  ``error="insufficient_scope"`` and the scope (RFC 6750 section 3.1), so the
  client asks for a wider token;
- too many failed logins: 429 ``TOOMANYREQUESTS`` with ``Retry-After``;
- an ``Authorization`` header over 8 KiB: 400.

HEAD gets the same status with an empty body (werkzeug sends no body for HEAD).
"""
from __future__ import annotations

from typing import Callable

from flask import Flask, current_app, g, request

from registry_ext.auth import audit
from registry_ext.auth.core import (ANONYMOUS, Auth, Caller, HeaderTooLarge, Throttled,
                                    Unauthenticated)
from registry_ext.auth.scopes import CATALOG_SCOPE, NEEDS, Need, Scope, undeclared
from registry_ext.errors import ErrorCode, RegistryError

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask, auth: Auth | None) -> None:
    """Install the hook (after every blueprint is registered); nothing when auth is off."""
    app.extensions["auth"] = auth
    if auth is None:
        return
    missing = undeclared(app)
    if missing:
        raise RuntimeError(f"endpoints without an access rule in registry_ext/auth/scopes.py: {missing}")
    audit.configure(auth.settings.audit_log)
    app.before_request(_authorize)
    app.after_request(_audit)


def caller() -> Caller:
    return g.get("caller", ANONYMOUS)


def may_pull(name: str | None) -> bool:
    """True when the caller may pull ``name`` (always with auth off). For mounts: ``from``."""
    auth: Auth | None = current_app.extensions.get("auth")
    return auth is None or (name is not None and "pull" in auth.allowed(caller(), name))


def repository_filter() -> Callable[[str], bool] | None:
    """For listings across repositories: a filter of what the caller may pull; None: no filter."""
    auth: Auth | None = current_app.extensions.get("auth")
    return None if auth is None else auth.visible(caller())


def _authorize() -> None:
    if request.endpoint is None:  # no route: the 404/405 is rendered as usual
        return
    auth: Auth = current_app.extensions["auth"]
    need = NEEDS.get(request.endpoint)
    if need is None:
        raise _error(ErrorCode.DENIED, "no access rule for this endpoint", {})
    if need.kind == "open" or (need.kind == "ops" and auth.ops_who[need.ops].anonymous):
        return
    g.need = need
    token_mode = auth.settings.scheme == "token"
    try:
        g.caller = auth.authenticate(request.headers.get("Authorization"), request.remote_addr or "-",
                                     basic=not token_mode or need.kind == "ops", bearer=token_mode)
    except HeaderTooLarge:
        raise _error(ErrorCode.UNSUPPORTED, "Authorization header larger than 8 KiB", {}, status=400) from None
    except Throttled as exc:
        g.denial = "throttled"
        raise _error(ErrorCode.TOOMANYREQUESTS, "too many failed logins, retry later",
                     {"retry_after": exc.retry_after}, headers={"Retry-After": str(exc.retry_after)}) from None
    except Unauthenticated as exc:
        g.denial = exc.reason
        raise _unauthorized(auth, _scope_of(need), exc.reason,
                            "invalid_token" if exc.token else None, basic=need.kind == "ops") from None
    _check(auth, need, g.caller)


def _scope_of(need: Need) -> Scope | None:
    if need.kind == "repository":
        return Scope("repository", (request.view_args or {})["name"], need.actions)
    return CATALOG_SCOPE if need.kind == "catalog" else None


def _check(auth: Auth, need: Need, who: Caller) -> None:
    if need.kind == "login":
        if not who.authenticated:
            raise _unauthorized(auth, None, "authentication required")
    elif need.kind == "repository":
        name = (request.view_args or {})["name"]
        if need.actions - auth.allowed(who, name):
            _deny(auth, who, Scope("repository", name, need.actions))
    elif need.kind == "catalog":
        if not who.authenticated and not auth.rules.anonymous_pulls_somewhere():
            raise _unauthorized(auth, CATALOG_SCOPE, "authentication required")
    elif need.kind == "ops" and not auth.names(auth.ops_who[need.ops], who):
        if not who.authenticated:
            raise _unauthorized(auth, None, "authentication required", basic=True)
        raise _denied(None, f"not allowed to read /{need.ops}")


def _deny(auth: Auth, who: Caller, scope: Scope) -> None:
    if who.user is None:  # anonymous, or an anonymous token: logging in may help
        raise _unauthorized(auth, scope, "authentication required",
                            "insufficient_scope" if who.grant is not None else None)
    if who.grant is not None and (not who.grant.own or not scope.actions - auth.rules_allow(who, scope.name)):
        # RFC 6750 section 3.1: a valid token without the scope is a 403 whose challenge names the
        # scope; a client asks for a wider token and retries (oras-py does so only after a 403).
        error = _denied(scope, "token lacks the scope")
        error.headers["WWW-Authenticate"] = _challenge(auth, scope, "insufficient_scope")
        raise error
    raise _denied(scope, "not allowed by the access rules")


def _unauthorized(auth: Auth, scope: Scope | None, reason: str, error: str | None = None,
                  basic: bool = False) -> RegistryError:
    g.denial = reason
    return _error(ErrorCode.UNAUTHORIZED, reason, _detail(scope),
                  headers={"WWW-Authenticate": _challenge(auth, scope, error, basic)})


def _challenge(auth: Auth, scope: Scope | None, error: str | None, basic: bool = False) -> str:
    s = auth.settings
    if s.scheme == "basic" or basic:
        return f'Basic realm="{s.realm}", charset="UTF-8"'
    realm = s.token_realm or request.host_url.rstrip("/") + "/auth/token"
    challenge = f'Bearer realm="{realm}",service="{s.service}"'
    if scope is not None:
        challenge += f',scope="{scope}"'
    if error:
        challenge += f',error="{error}"'
    return challenge


def _denied(scope: Scope | None, reason: str) -> RegistryError:
    g.denial = reason
    return _error(ErrorCode.DENIED, None, _detail(scope))


def _detail(scope: Scope | None) -> list[dict]:
    """distribution's detail: the access that was missing."""
    if scope is None:
        return []
    return [{"Type": scope.type, "Name": scope.name, "Action": action} for action in sorted(scope.actions)]


def _error(code: ErrorCode, message: str | None, detail, *, status: int | None = None,
           headers: dict | None = None) -> RegistryError:
    return RegistryError(code, detail or None, status=status, message=message, headers=headers)


def _main_action(need: Need | None) -> str:
    """``delete``, ``push`` or ``pull`` for repository endpoints; else what was needed (login, catalog...)."""
    if need is None:
        return "token" if request.endpoint == "token.get_token" else "-"
    for action in ("delete", "push", "pull"):
        if action in need.actions:
            return action
    return need.ops or need.kind


def _audit(resp):
    denied = "denial" in g or resp.status_code in (401, 403, 429)
    if request.method not in WRITES and not denied:
        return resp
    who = caller()
    args = request.view_args or {}
    need: Need | None = g.get("need")
    action = _main_action(need)
    if denied:
        result = "throttled" if resp.status_code == 429 else "denied"
    else:
        result = "ok" if resp.status_code < 400 else "failed"
    audit.record(event="denied" if denied else "write", user=who.user, scheme=who.scheme,
                 client=request.remote_addr, method=request.method, action=action,
                 repository=args.get("name"), reference=args.get("reference") or args.get("upload_id"),
                 digest=resp.headers.get("Docker-Content-Digest") or args.get("digest")
                 or request.args.get("digest"),
                 status=resp.status_code, result=result, reason=g.get("denial"),
                 request_id=g.get("request_id"))
    return resp
