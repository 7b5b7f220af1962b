"""One upstream of the pull-through mirror, validated (pure; config.py and the proxy use it).

::

    [proxy.upstreams.hub]
    hosts = ["docker.io", "registry-1.docker.io"]   # the `ns` values and path prefixes it answers for
    urls = ["https://registry-1.docker.io"]         # base URLs tried in order (failover)
    username = ""                                   # Basic / token credentials (optional)
    password = ""                                   # or password_file = "/run/secrets/hub" (first line)
    realm = "https://auth.docker.io/token"          # a token service the credentials may go to
    tls_verify = true
    ca_bundle = ""                                  # a PEM file of CAs to trust instead of the system's
    repositories = ["library/*"]                    # globs of upstream repositories; empty: all
    manifest_ttl = 300                              # seconds a cached tag is served before a HEAD upstream
    timeout = 30                                    # seconds per connect / read
    max_retries = 2                                 # retries on connection errors, 5xx, 429
    retry_delay = 0.5                               # first backoff (doubled each time)
    concurrency = 16                                # requests in flight to it per worker
    allow_push = false                              # pushes and deletes into its local namespace
    library_prefix = true                           # a one-segment name `ubuntu` is `library/ubuntu`
    tags = ["v?[0-9.]+"]                            # RE2 regexes a tag must match (whole); empty: all
    versions = [">=1.20"]                           # version ranges a tag must lie in; empty: all
    on_demand = true                                # false: served from the cache only, never dialled
    rate = 0                                        # requests/second to it per worker; 0: no limit
    cache_max_bytes = 0                             # evict least recently pulled images beyond; 0: no cap
    cache_expire_days = 0                           # evict images not pulled for so long; 0: never
    sync_interval = 0                               # seconds between syncs of the named repositories; 0: none
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from registry_ext.oci.repo_filter import RepoFilterError, compile_glob_list
from registry_ext.proxy.rules import RuleError, TagRules, compile_rules

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# A registry host name as clients write it in `ns` or a path prefix: DNS labels, no port, no scheme.
HOST = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class UpstreamConfigError(ValueError):
    """The upstream's table is invalid; the message says which key."""


@dataclasses.dataclass(frozen=True)
class Upstream:
    name: str
    hosts: tuple[str, ...]
    urls: tuple[str, ...]
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    realm: str = ""
    tls_verify: bool = True
    ca_bundle: str = ""
    repositories: tuple[str, ...] = ()
    manifest_ttl: int = 300
    timeout: float = 30.0
    max_retries: int = 2
    retry_delay: float = 0.5
    concurrency: int = 16
    allow_push: bool = False
    library_prefix: bool = False
    tags: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    on_demand: bool = True
    rate: float = 0.0
    cache_max_bytes: int = 0
    cache_expire_days: int = 0
    sync_interval: int = 0
    rules: TagRules = dataclasses.field(default=TagRules(), compare=False, repr=False)
    globs: tuple[Any, ...] = dataclasses.field(default=(), compare=False, repr=False)

    def allows(self, repository: str) -> bool:
        """Whether the upstream repository may be mirrored (``repositories`` globs)."""
        return not self.globs or any(g.fullmatch(repository) for g in self.globs)

    def upstream_repo(self, repository: str) -> str:
        """The name the upstream knows (``library/`` added to one-segment names when configured)."""
        if self.library_prefix and "/" not in repository:
            return f"library/{repository}"
        return repository

    @property
    def sync_repositories(self) -> tuple[str, ...]:
        """The repositories a sync copies: those ``repositories`` names without a wildcard."""
        return tuple(r for r in self.repositories if not any(c in r for c in "*?"))

    @property
    def verify(self) -> bool | str:
        """What ``requests`` takes as ``verify``: the CA bundle, or whether to check at all."""
        return self.ca_bundle or self.tls_verify


_TYPES: dict[str, type | tuple[type, ...]] = {
    "hosts": list, "urls": list, "username": str, "password": str, "password_file": str, "realm": str,
    "tls_verify": bool, "ca_bundle": str, "repositories": list, "manifest_ttl": int, "timeout": (int, float),
    "max_retries": int, "retry_delay": (int, float), "concurrency": int, "allow_push": bool,
    "library_prefix": bool, "tags": list, "versions": list, "on_demand": bool, "rate": (int, float),
    "cache_max_bytes": int, "cache_expire_days": int, "sync_interval": int}
_COPIED = ("username", "realm", "tls_verify", "ca_bundle", "manifest_ttl", "timeout", "max_retries",
           "retry_delay", "concurrency", "allow_push", "library_prefix", "on_demand", "rate", "cache_max_bytes",
           "cache_expire_days", "sync_interval")


def parse_upstream(name: str, table: Any) -> Upstream:
    """An Upstream from its TOML table.

    Raises:
        UpstreamConfigError
    """
    if not _NAME.fullmatch(name):
        raise UpstreamConfigError("names are lowercase letters, digits, _ . - (at most 64)")
    if not isinstance(table, Mapping):
        raise UpstreamConfigError('must be a table like { hosts = ["docker.io"], urls = ["https://..."] }')
    for key, value in table.items():
        if key not in _TYPES:
            raise UpstreamConfigError(f"unknown key {key}")
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and _TYPES[key] is not bool):
            raise UpstreamConfigError(f"{key}: wrong type {type(value).__name__}")
    values = {k: table[k] for k in _COPIED if k in table}
    tags, versions = table.get("tags", []), table.get("versions", [])
    try:
        rules = compile_rules(tags, versions)
    except RuleError as exc:
        raise UpstreamConfigError(str(exc)) from None
    upstream = Upstream(name, _hosts(table.get("hosts", [])), _urls(table.get("urls", [])),
                        password=_password(table), repositories=tuple(table.get("repositories", ())),
                        tags=tuple(tags), versions=tuple(versions), rules=rules,
                        globs=compile_globs(table.get("repositories", []), "repositories"), **values)
    _check(upstream)
    return upstream


def _hosts(hosts: list) -> tuple[str, ...]:
    if not hosts:
        raise UpstreamConfigError('hosts: at least one registry host name, like ["docker.io"]')
    for host in hosts:
        if not isinstance(host, str) or not HOST.fullmatch(host):
            raise UpstreamConfigError(f"hosts: {str(host)[:80]!r} is not a host name (lowercase, no port "
                                      "or scheme)")
    return tuple(dict.fromkeys(hosts))


def _urls(urls: list) -> tuple[str, ...]:
    if not urls:
        raise UpstreamConfigError('urls: at least one base URL, like ["https://registry-1.docker.io"]')
    out = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username
                or parts.password or parts.query or parts.fragment or parts.path not in ("", "/")):
            raise UpstreamConfigError(f"urls: {str(url)[:80]!r} must be http(s)://host[:port] (no path, no "
                                      "user:password)")
        _port(parts, url)
        out.append(url.rstrip("/"))
    return tuple(out)


def _port(parts, url: str) -> None:
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise UpstreamConfigError(f"urls: {url[:80]!r} has a bad port") from None


def _password(table: Mapping) -> str:
    if "password" in table and "password_file" in table:
        raise UpstreamConfigError("password and password_file: set one of them")
    if "password_file" not in table:
        return table.get("password", "")
    try:
        lines = Path(table["password_file"]).read_text().splitlines()
    except OSError as exc:
        raise UpstreamConfigError(f"password_file: cannot read it ({exc.strerror or exc})") from None
    return lines[0] if lines else ""


def compile_globs(patterns: list, key: str) -> tuple[Any, ...]:
    """Repository globs (oci/repo_filter.py), compiled. Raises: UpstreamConfigError naming ``key``."""
    try:
        return compile_glob_list(patterns)
    except RepoFilterError as exc:
        raise UpstreamConfigError(f"{key}: {exc}") from None


def _check(upstream: Upstream) -> None:
    if upstream.realm:
        parts = urlsplit(upstream.realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamConfigError("realm: an http:// or https:// URL, like https://auth.docker.io/token")
    if upstream.password and not upstream.username:
        raise UpstreamConfigError("password: needs a username")
    for key, value, low, high in (("manifest_ttl", upstream.manifest_ttl, 0, 365 * 86_400),
                                  ("max_retries", upstream.max_retries, 0, 10),
                                  ("concurrency", upstream.concurrency, 1, 1024),
                                  ("cache_max_bytes", upstream.cache_max_bytes, 0, 1 << 60),
                                  ("cache_expire_days", upstream.cache_expire_days, 0, 36_500)):
        if not low <= value <= high:
            raise UpstreamConfigError(f"{key}: must be {low}-{high}")
    if not 0 < upstream.timeout <= 600:
        raise UpstreamConfigError("timeout: must be in (0, 600] seconds")
    if upstream.sync_interval and not (10 <= upstream.sync_interval <= 30 * 86_400 and upstream.sync_repositories):
        raise UpstreamConfigError("sync_interval: 0 (no sync) or 10-2592000 seconds, with at least one "
                                  "repository named without wildcards in repositories (what it copies)")
    if not 0 <= upstream.rate <= 100_000:
        raise UpstreamConfigError("rate: must be 0 (no limit) to 100000 requests per second")
    if not 0 <= upstream.retry_delay <= 60:
        raise UpstreamConfigError("retry_delay: must be 0-60 seconds")
    if upstream.ca_bundle and not Path(upstream.ca_bundle).is_file():
        raise UpstreamConfigError("ca_bundle: not a readable file")
