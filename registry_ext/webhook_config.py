"""One webhook endpoint's configuration, validated (pure; config.py and the delivery worker use it).

::

    [webhooks.endpoints.ci]
    url = "https://ci.example/hooks/registry"   # http:// or https://; never taken from a request
    secret = "..."                              # HMAC-SHA256 key of the X-Regext-Signature header
    headers = { Authorization = "Bearer ..." }  # sent with every delivery
    repositories = ["myorg/*", "base/**"]       # globs (oci/repo_filter.py); empty: every repository
    actions = ["pushed", "moved"]               # of pushed, moved, deleted; empty: all
    timeout = 5                                 # seconds for one attempt, connect to last byte
    max_attempts = 8                            # then the event goes to the dead letters
    backoff_seconds = 2                         # wait before retry k: backoff * 2^(k-1) ...
    backoff_max_seconds = 600                   # ... at most this
    allow_private = false                       # true: loopback, private and link-local addresses allowed
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping
from urllib.parse import urlsplit

from registry_ext.oci.repo_filter import RepoFilterError, compile_glob

ACTIONS = ("pushed", "moved", "deleted")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")
_RESERVED = {"host", "content-length", "content-type", "transfer-encoding", "connection",
             "x-regext-signature", "x-regext-delivery", "x-regext-timestamp"}


class EndpointError(ValueError):
    """The endpoint's table is invalid; the message says which key."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    repositories: tuple[str, ...] = ()
    actions: tuple[str, ...] = ACTIONS
    timeout: float = 5.0
    max_attempts: int = 8
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    allow_private: bool = False
    globs: tuple[Any, ...] = dataclasses.field(default=(), compare=False, repr=False)

    def wants(self, repository: str, action: str) -> bool:
        """Whether an event of ``action`` in ``repository`` goes to this endpoint."""
        if action not in self.actions:
            return False
        return not self.globs or any(g.fullmatch(repository) for g in self.globs)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts before the next one."""
        return min(self.backoff_seconds * 2 ** max(attempts - 1, 0), self.backoff_max_seconds)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "url": str, "secret": str, "headers": Mapping, "repositories": list, "actions": list,
    "timeout": (int, float), "max_attempts": int, "backoff_seconds": (int, float),
    "backoff_max_seconds": (int, float), "allow_private": bool}


def parse_endpoint(name: str, table: Any) -> Endpoint:
    """An Endpoint from its TOML table.

    Raises:
        EndpointError
    """
    if not _NAME.fullmatch(name):
        raise EndpointError("names are lowercase letters, digits, _ . - (at most 64)")
    if not isinstance(table, Mapping):
        raise EndpointError('must be a table like { url = "https://host/path" }')
    for key, value in table.items():
        if key not in _TYPES:
            raise EndpointError(f"unknown key {key}")
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and _TYPES[key] is not bool):
            raise EndpointError(f"{key}: wrong type {type(value).__name__}")
    url = table.get("url", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise EndpointError("url: required, http:// or https:// with a host and no user:password")
    values = {k: table[k] for k in ("secret", "timeout", "max_attempts", "backoff_seconds",
                                    "backoff_max_seconds", "allow_private") if k in table}
    endpoint = Endpoint(name, url, headers=_headers(table.get("headers", {})),
                        repositories=tuple(table.get("repositories", ())),
                        actions=_actions(table.get("actions")), globs=_globs(table.get("repositories", ())),
                        **values)
    _check_numbers(endpoint)
    return endpoint


def _headers(headers: Mapping) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in headers.items():
        if not _HEADER.fullmatch(key) or key.lower() in _RESERVED:
            raise EndpointError(f"headers: {key!r} is not allowed (letters, digits and -; not one the "
                                "registry sets itself)")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise EndpointError(f"headers.{key}: must be a string without line breaks")
        out.append((key, value))
    return tuple(out)


def _actions(actions: list | None) -> tuple[str, ...]:
    if not actions:
        return ACTIONS
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        raise EndpointError(f"actions: unknown {unknown[0]!r}; expected some of {list(ACTIONS)}")
    return tuple(dict.fromkeys(actions))


def _globs(patterns: list) -> tuple[Any, ...]:
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise EndpointError("repositories: a list of non-empty globs")
        try:
            compiled.append(compile_glob(pattern))
        except RepoFilterError as exc:
            raise EndpointError(f"repositories: {exc}") from None
    return tuple(compiled)


def _check_numbers(endpoint: Endpoint) -> None:
    if not 0 < endpoint.timeout <= 120:
        raise EndpointError("timeout: must be in (0, 120] seconds")
    if not 1 <= endpoint.max_attempts <= 100:
        raise EndpointError("max_attempts: must be 1-100")
    if not 0 < endpoint.backoff_seconds <= endpoint.backoff_max_seconds <= 86400:
        raise EndpointError("backoff_seconds and backoff_max_seconds: 0 < backoff <= backoff_max <= 86400")
