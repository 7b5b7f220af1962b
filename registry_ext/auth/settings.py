"""Validation of ``[auth]`` (called by config.py; files are read only when the app is built)."""
from __future__ import annotations

import re
from typing import Mapping

from registry_ext.auth.rules import RuleError, compile_rules, parse_who

SCHEMES = ("none", "basic", "token")
_QUOTABLE = re.compile(r"[^\"\\\x00-\x1f\x7f]{1,200}")  # fits in a quoted challenge parameter
_TRUSTED_KEYS = {"issuer", "public_key", "jwks"}


def validate_auth(auth, error: type[Exception]) -> None:
    """Raise ``error`` naming the first problem of ``[auth]``."""
    if auth.scheme not in SCHEMES:
        raise error("auth.scheme: must be none, basic or token")
    for key in ("realm", "service", "issuer"):
        if not _QUOTABLE.fullmatch(getattr(auth, key)):
            raise error(f"auth.{key}: 1-200 characters, no quotes, backslashes or control characters")
    if auth.token_realm and (not auth.token_realm.startswith(("http://", "https://"))
                             or not _QUOTABLE.fullmatch(auth.token_realm)):
        raise error("auth.token_realm: empty or an http:// or https:// URL")
    if auth.scheme == "basic" and not auth.htpasswd:
        raise error("auth.htpasswd: required with scheme = \"basic\"")
    if auth.scheme == "token" and not auth.token_issuer and not auth.trusted_issuers:
        raise error("auth: scheme = \"token\" needs token_issuer = true or trusted_issuers")
    if auth.scheme == "token" and not auth.token_issuer and not auth.token_realm:
        raise error("auth.token_realm: required when this registry does not issue tokens itself")
    for where, value, low, high in (("token_ttl_seconds", auth.token_ttl_seconds, 30, 3600),
                                    ("clock_skew_seconds", auth.clock_skew_seconds, 0, 300),
                                    ("failures_per_address", auth.failures_per_address, 1, 100000),
                                    ("failures_per_user", auth.failures_per_user, 1, 100000),
                                    ("failure_window_seconds", auth.failure_window_seconds, 1, 86400)):
        if not low <= value <= high:
            raise error(f"auth.{where}: must be {low}-{high}")
    if not auth.audit_log:
        raise error("auth.audit_log: \"-\" (standard error) or a file path")
    try:
        compile_rules(auth.rules, auth.groups)
        for key in ("catalog", "metrics", "readyz"):
            parse_who(getattr(auth, key), f"auth.{key}", auth.groups)
    except RuleError as exc:
        raise error(str(exc)) from None
    _validate_trusted(auth.trusted_issuers, auth.issuer, error)


def _validate_trusted(entries, own_issuer: str, error: type[Exception]) -> None:
    if not isinstance(entries, list):
        raise error("auth.trusted_issuers: must be a list of tables")
    seen = {own_issuer}
    for i, entry in enumerate(entries):
        where = f"auth.trusted_issuers[{i}]"
        if not isinstance(entry, Mapping) or not set(entry) <= _TRUSTED_KEYS:
            raise error(f"{where}: keys are issuer and public_key or jwks")
        if not all(isinstance(v, str) for v in entry.values()) or not entry.get("issuer"):
            raise error(f"{where}: issuer is required, values are strings")
        if bool(entry.get("public_key")) == bool(entry.get("jwks")):
            raise error(f"{where}: give exactly one of public_key (PEM) and jwks (JSON file)")
        if entry["issuer"] in seen:
            raise error(f"{where}: issuer {entry['issuer']!r} given twice (or is this registry's own)")
        seen.add(entry["issuer"])
