"""``GET /auth/token``: the Docker token endpoint (distribution ``docs/spec/auth/token.md``).

Basic credentials (optional: without them the token is anonymous),
``service`` (must be ours), any number of ``scope`` parameters (at most
``MAX_SCOPES`` scopes in all). The token's ``access`` holds, per scope, the
actions asked for that the rules allow; nothing is refused for lack of
rights, the token is just narrower (the registry then answers 403). Wrong
credentials: 401 with a Basic challenge; too many failures: 429.
``offline_token`` and refresh tokens are not offered; a POST (OAuth2)
gets 405, on which clients (containerd, docker) fall back to this GET.
"""
from __future__ import annotations

import datetime

import orjson
from flask import Blueprint, current_app, g, request

from registry_ext.api.http import Response
from registry_ext.auth.core import Auth, HeaderTooLarge, Throttled, Unauthenticated
from registry_ext.auth.rules import ACTIONS
from registry_ext.auth.scopes import Scope, parse_scopes
from registry_ext.errors import ErrorCode, RegistryError

bp = Blueprint("token", __name__)


@bp.get("/auth/token")
def get_token():
    auth: Auth = current_app.extensions["auth"]
    if auth.issuer is None:
        raise RegistryError(ErrorCode.UNSUPPORTED, status=404, message="this registry issues no tokens")
    service = request.args.get("service")
    if service is not None and service != auth.settings.service:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"service": service[:200]}, message="unknown service")
    scopes = parse_scopes(request.args.getlist("scope"))
    caller = _login(auth)
    access = [entry for entry in (_grant(auth, caller, scope) for scope in scopes) if entry["actions"]]
    token, expires_in, issued_at = auth.issuer.issue(caller.user, access)
    body = {"token": token, "access_token": token, "expires_in": expires_in,
            "issued_at": datetime.datetime.fromtimestamp(issued_at, datetime.timezone.utc).isoformat()}
    return Response(orjson.dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"})


def _login(auth: Auth):
    """The caller from Basic credentials (or anonymous); failures are throttled."""
    try:
        g.caller = auth.authenticate(request.headers.get("Authorization"), request.remote_addr or "-",
                                     basic=True, bearer=False)
    except HeaderTooLarge:
        raise RegistryError(ErrorCode.UNSUPPORTED, message="Authorization header larger than 8 KiB") from None
    except Throttled as exc:
        raise RegistryError(ErrorCode.TOOMANYREQUESTS, {"retry_after": exc.retry_after},
                            message="too many failed logins, retry later",
                            headers={"Retry-After": str(exc.retry_after)}) from None
    except Unauthenticated as exc:
        g.denial = exc.reason
        raise RegistryError(ErrorCode.UNAUTHORIZED, message=exc.reason, headers={
            "WWW-Authenticate": f'Basic realm="{auth.settings.realm}", charset="UTF-8"'}) from None
    return g.caller


def _grant(auth: Auth, caller, scope: Scope) -> dict:
    """The access entry for one scope: what was asked, as far as the rules allow."""
    if scope.type == "registry":
        allowed = {"*"} if "*" in scope.actions and auth.whole_catalog(caller) else set()
        return {"type": "registry", "name": "catalog", "actions": sorted(allowed)}
    wanted = ACTIONS if "*" in scope.actions else scope.actions & ACTIONS
    return {"type": "repository", "name": scope.name,
            "actions": sorted(wanted & auth.rules.actions(caller.user, scope.name))}
