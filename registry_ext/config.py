"""Configuration as validated data.

Sources, later ones winning: built-in defaults, a TOML file, a few
explicit environment variables (``REGISTRY_EXT_CONFIG`` names the file,
``REGISTRY_EXT_DATA_DIR``, ``REGISTRY_EXT_REDIS_URL``,
``REGISTRY_EXT_KEY_PREFIX``, ``REGISTRY_EXT_FAILPOINTS_FILE``), then values
given in code (the command-line options). Unknown keys and bad values raise
:class:`ConfigError`. Nothing is read at import time.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from registry_ext import config_sections as sections


READYZ_DETAILS = ("loopback", "everyone", "nobody")


class ConfigError(ValueError):
    """The configuration is invalid; the message says where."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2    # gthread workers x threads: measured in docs/deployment.md (bench/workers.py)
    threads: int = 16
    timeout: int = 60
    # Behind nginx: the internal location whose alias is <storage.root>/blobs/; blob GETs then
    # answer with X-Accel-Redirect and nginx sends the bytes. Empty: the app streams them.
    x_accel_prefix: str = ""
    # Proxies in front whose X-Forwarded-For/-Proto/-Host/-Port are believed (0: none).
    trusted_proxies: int = 0
    # Where this registry's docs/ folder is published (a URL ending in "/"): extension discovery
    # then links to it. Empty: discovery's `_regext` entry has no `url`.
    docs_url: str = ""
    # Who sees /readyz's details (Redis address, error texts): "loopback" clients, "everyone" or "nobody".
    # Others get the status code and {"status": "ready" | "unavailable"}.
    readyz_details: str = "loopback"


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    # filesystem: everything under root. s3: blobs and records in the bucket of [storage.s3]
    # (storage/driver/s3_settings.py lists its keys); root then holds only local temp files.
    driver: str = "filesystem"
    root: str = "./data"
    delete_enabled: bool = True
    s3: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RedisSettings:
    url: str = ""  # empty: `registry-ext serve` runs a private redis-server
    key_prefix: str = "regext"
    # How often each worker checks that the index is intact (rebuilding it after a flush,
    # verifying it after a Redis restart) and replays unfinished writes from the journal.
    watch_interval_ms: int = 1000


@dataclasses.dataclass(frozen=True)
class LimitSettings:
    manifest_max_bytes: int = 4 * 1024 * 1024
    page_max: int = 10000
    referrers_page: int = 1000
    scan_max: int = 50000  # tags a filtered extension listing may examine per request
    push_tags_max: int = 100  # `tag` parameters of one manifest push by digest (spec: at least 10)
    # Bytes of listing metadata (artifactType, created, platforms, labels) the index keeps per manifest,
    # and bytes of manifest entries per listing page (at least one entry): listings cost bounded memory.
    entry_fields_max_bytes: int = 4096
    page_max_bytes: int = 1024 * 1024
    upload_ttl_seconds: int = 7 * 24 * 3600
    # Upload sessions (docs/deployment.md#upload-sessions): one that never received a byte expires after
    # upload_idle_seconds; beyond these open sessions a POST gets 429 TOOMANYREQUESTS with Retry-After.
    upload_idle_seconds: int = 300
    upload_sessions_max: int = 1000
    upload_sessions_per_repo: int = 100
    upload_sessions_per_client: int = 50
    # An upload body must deliver upload_min_rate_bytes within every upload_min_rate_seconds (0 bytes: no
    # minimum) or it is cut (408) and its client refused uploads for upload_slow_penalty_seconds (429).
    # Needs gunicorn (api/slow_bodies.py).
    upload_min_rate_bytes: int = 64 * 1024
    upload_min_rate_seconds: int = 20
    upload_slow_penalty_seconds: int = 60


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    dir: str = ""  # multiprocess files; empty: a private temp dir made by the server at start


@dataclasses.dataclass(frozen=True)
class MirrorSettings:
    # Remotes the mirror-diff API may compare with, by name:
    #   remotes = { upstream = { url = "https://host:port", timeout = 30, username = "", password = "",
    #                            realm = "https://auth.host/token" } }
    # A request names a remote; a URL is never taken from a request (docs/mirror-diff.md). The
    # credentials go only to the remote's own origin and to its `realm` (the token service).
    remotes: dict = dataclasses.field(default_factory=dict)
    cache_seconds: int = 5  # how long an API answer is reused for the same (remote, repository)
    # Comparisons the API runs at once per worker process; as many identical requests may wait for a
    # running one; more get 429 TOOMANYREQUESTS at once (each holds a request thread until its deadline).
    max_comparisons: int = 2


@dataclasses.dataclass(frozen=True)
class ProxySettings:
    """The pull-through mirror (registry_ext/proxy/, docs/mirror.md)."""

    # Upstreams by name, each validated by proxy/config.py (its docstring lists the keys):
    #   [proxy.upstreams.hub]  hosts = ["docker.io"]  urls = ["https://registry-1.docker.io"]
    upstreams: dict = dataclasses.field(default_factory=dict)
    # The upstream for requests with neither `ns` nor a configured host as path prefix; empty:
    # such requests are local, as without a proxy.
    default_upstream: str = ""
    # Repository globs always served locally, never proxied (even with a default upstream).
    local_names: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    # docs/auth.md. "none": everyone may do everything (the quick start); "basic": HTTP Basic
    # against `htpasswd` on every request; "token": Docker/OCI bearer tokens (our own /auth/token
    # and/or trusted external issuers).
    scheme: str = "none"
    htpasswd: str = ""            # bcrypt entries (`htpasswd -B`); re-read when it changes
    groups: dict = dataclasses.field(default_factory=dict)    # { ci = ["robot"], ops = ["alice"] }
    rules: list = dataclasses.field(default_factory=list)     # [{ repository, who, actions }], first match
    catalog: list = dataclasses.field(default_factory=list)   # who gets registry:catalog:* (whole list)
    metrics: list = dataclasses.field(default_factory=lambda: ["anonymous"])  # who may read /metrics
    readyz: list = dataclasses.field(default_factory=lambda: ["anonymous"])   # who may read /readyz
    realm: str = "registry-ext"   # Basic realm
    service: str = "registry-ext"  # token `aud` and the challenge's service=
    issuer: str = "registry-ext"   # `iss` of the tokens /auth/token signs
    token_issuer: bool = True      # serve /auth/token (scheme = "token")
    token_realm: str = ""          # realm= of the challenge; empty: <this host>/auth/token
    signing_key: str = ""          # PEM (EC P-256 or RSA); empty: <storage.root>/auth/token-signing-key.pem
    token_ttl_seconds: int = 300
    clock_skew_seconds: int = 30
    trusted_issuers: list = dataclasses.field(default_factory=list)  # [{ issuer, public_key | jwks }]
    failures_per_address: int = 20  # failed logins from one address per window before 429
    failures_per_user: int = 100    # failed logins for one user (all addresses) per window before 429
    failure_window_seconds: int = 300
    audit_log: str = "-"            # one JSON line per write and per denied request; "-": stderr


@dataclasses.dataclass(frozen=True)
class FeedSettings:
    """The update feed across repositories (docs/updates.md)."""

    enabled: bool = True
    retention_events: int = 100_000  # newest events kept in the feed stream (MAXLEN ~)
    retention_days: int = 7          # and only those younger than this (0: no age limit)
    recent_per_repo: int = 100       # events kept per repository (recent=N, per-repository Atom)
    page_max: int = 1000             # events per answer at most (n)
    scan_max: int = 10_000           # feed entries one request examines at most
    max_repositories: int = 1000     # repository names per request or watch list
    wait_max_seconds: int = 60       # longest long-poll (`wait` above it is lowered)
    wait_threads: int = 4            # waiting requests per worker without offload; the rest answer at once
    # Behind nginx: the internal location proxied to `registry-ext feed-waiter`; long-polls are handed
    # to it with X-Accel-Redirect and hold no gunicorn thread. Empty: workers wait themselves.
    wait_offload: str = ""
    waiter_listen: str = "127.0.0.1:5001"  # where `registry-ext feed-waiter` listens (host:port or unix:/path)
    watch_ttl_seconds: int = 7 * 24 * 3600  # a watch list (POST) lives this long after its last use


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    # Endpoints by name (docs/updates.md#webhooks):
    #   endpoints = { ci = { url = "https://ci.example/hook", secret = "...", actions = ["pushed"] } }
    endpoints: dict = dataclasses.field(default_factory=dict)
    dead_letter_max: int = 10_000  # dead letters kept per endpoint (oldest dropped)


@dataclasses.dataclass(frozen=True)
class GcSettings:
    """Garbage collection of unreferenced blobs (docs/gc.md); `registry-ext gc` runs it by hand."""

    enabled: bool = False             # also run it inside `serve`, every interval_seconds (one host at a time)
    interval_seconds: int = 86_400
    # Blob links and blobs touched (uploaded, mounted, pushed) within this long are kept: a client
    # uploading an image's layers has this long to push the manifest that references them.
    grace_period_seconds: int = 86_400
    lock_ttl_seconds: int = 30        # a killed run's lease frees the next run after this long


@dataclasses.dataclass(frozen=True)
class ImmutableTagSettings:
    # Tags that cannot be moved or deleted (registry_ext/tag_rules.py, docs/retention.md#immutable-tags):
    #   [[immutable_tags.rules]]  repositories = ["**"]  tags = '^v?[0-9]+\\.[0-9]+\\.[0-9]+$'
    rules: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class RetentionSettings:
    # What `registry-ext retention` deletes (services/retention.py, docs/retention.md):
    #   [[retention.rules]]  repositories = ["apps/**"]  keep_newest = 5  untagged_older_than = "14d"
    rules: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class TestingSettings:
    # Crash injection for the reliability tests (registry_ext/failpoints.py). Never in production.
    failpoints_file: str = ""


@dataclasses.dataclass(frozen=True)
class Settings:
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    redis: RedisSettings = RedisSettings()
    limits: LimitSettings = LimitSettings()
    metrics: MetricsSettings = MetricsSettings()
    mirror: MirrorSettings = MirrorSettings()
    proxy: ProxySettings = ProxySettings()
    auth: AuthSettings = AuthSettings()
    feed: FeedSettings = FeedSettings()
    webhooks: WebhookSettings = WebhookSettings()
    gc: GcSettings = GcSettings()
    immutable_tags: ImmutableTagSettings = ImmutableTagSettings()
    retention: RetentionSettings = RetentionSettings()
    testing: TestingSettings = TestingSettings()


ENV_KEYS = {
    "REGISTRY_EXT_DATA_DIR": ("storage", "root"),
    "REGISTRY_EXT_REDIS_URL": ("redis", "url"),
    "REGISTRY_EXT_KEY_PREFIX": ("redis", "key_prefix"),
    "REGISTRY_EXT_FAILPOINTS_FILE": ("testing", "failpoints_file"),
}


def load_settings(path: str | os.PathLike | None = None, *, data: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Merge defaults, the TOML file at ``path``, ``environ`` and ``data``; validate."""
    environ = os.environ if environ is None else environ
    merged: dict[str, dict[str, Any]] = {}
    path = path or environ.get("REGISTRY_EXT_CONFIG")
    if path:
        try:
            _merge(merged, tomllib.loads(Path(path).read_text()), str(path))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    for var, (section, key) in ENV_KEYS.items():
        if var in environ:
            merged.setdefault(section, {})[key] = environ[var]
    if data:
        _merge(merged, data, "settings")
    return _build(merged)


def replace(settings: Settings, section: str, **values: Any) -> Settings:
    """A copy of ``settings`` with some keys of one section changed (validated)."""
    data = {name: dataclasses.asdict(getattr(settings, name)) for name in _sections()}
    data[section].update(values)
    return _build(data)


def _sections() -> dict[str, type]:
    return {f.name: f.type if isinstance(f.type, type) else globals()[f.type]
            for f in dataclasses.fields(Settings)}


def _merge(into: dict, source: Mapping[str, Any], origin: str) -> None:
    sections = _sections()
    for section, values in source.items():
        if section not in sections:
            raise ConfigError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        into.setdefault(section, {}).update(values)


def _build(merged: Mapping[str, Mapping[str, Any]]) -> Settings:
    built = {}
    for section, cls in _sections().items():
        values = dict(merged.get(section, {}))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in fields:
                raise ConfigError(f"unknown key {section}.{key}")
        kwargs = {key: _coerce(f"{section}.{key}", values[key], _default(fields[key]))
                  for key in values}
        built[section] = cls(**kwargs)
    settings = Settings(**built)
    _validate(settings)
    return settings


def _default(field: dataclasses.Field) -> Any:
    factory = field.default_factory  # dataclasses.MISSING (not callable) when the field has a plain default
    return factory() if callable(factory) else field.default


def _coerce(where: str, value: Any, default: Any) -> Any:
    """Coerce env strings; check the type matches the default's."""
    kind = type(default)
    if isinstance(value, str) and kind is int:
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if isinstance(value, str) and kind is bool:
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        value = value.lower() in ("true", "1", "yes")
    if type(value) is not kind:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _validate(settings: Settings) -> None:
    if not 0 < settings.server.port < 65536:
        raise ConfigError("server.port: must be 1-65535")
    for where, value in (("server.workers", settings.server.workers),
                         ("server.threads", settings.server.threads),
                         ("server.timeout", settings.server.timeout),
                         ("limits.manifest_max_bytes", settings.limits.manifest_max_bytes),
                         ("limits.page_max", settings.limits.page_max),
                         ("limits.referrers_page", settings.limits.referrers_page),
                         ("limits.scan_max", settings.limits.scan_max),
                         ("limits.push_tags_max", settings.limits.push_tags_max),
                         ("limits.entry_fields_max_bytes", settings.limits.entry_fields_max_bytes),
                         ("limits.page_max_bytes", settings.limits.page_max_bytes),
                         ("limits.upload_ttl_seconds", settings.limits.upload_ttl_seconds),
                         ("limits.upload_idle_seconds", settings.limits.upload_idle_seconds),
                         ("limits.upload_sessions_max", settings.limits.upload_sessions_max),
                         ("limits.upload_sessions_per_repo", settings.limits.upload_sessions_per_repo),
                         ("limits.upload_sessions_per_client", settings.limits.upload_sessions_per_client),
                         ("limits.upload_min_rate_seconds", settings.limits.upload_min_rate_seconds),
                         ("limits.upload_slow_penalty_seconds", settings.limits.upload_slow_penalty_seconds),
                         ("redis.watch_interval_ms", settings.redis.watch_interval_ms)):
        if value < 1:
            raise ConfigError(f"{where}: must be at least 1")
    limits = settings.limits
    if limits.upload_idle_seconds > limits.upload_ttl_seconds:
        raise ConfigError("limits.upload_idle_seconds: must not exceed limits.upload_ttl_seconds")
    if max(limits.upload_sessions_per_repo, limits.upload_sessions_per_client) > limits.upload_sessions_max:
        raise ConfigError("limits.upload_sessions_per_repo and _per_client: must not exceed limits.upload_sessions_max")
    if not 0 <= limits.upload_min_rate_bytes <= 16 * 1024 * 1024:
        raise ConfigError("limits.upload_min_rate_bytes: must be 0 (no minimum) to 16 MiB")
    if not 0 <= settings.server.trusted_proxies <= 10:
        raise ConfigError("server.trusted_proxies: must be 0-10")
    if settings.server.readyz_details not in READYZ_DETAILS:
        raise ConfigError(f"server.readyz_details: must be one of {', '.join(READYZ_DETAILS)}")
    accel = settings.server.x_accel_prefix
    if accel and not sections.ACCEL_PREFIX.fullmatch(accel):
        raise ConfigError("server.x_accel_prefix: must be empty or a path like /_blobs "
                          "(leading slash, no trailing slash, letters, digits, _ - / only)")
    docs = settings.server.docs_url
    if docs and not (sections.HTTP_URL.fullmatch(docs) and docs.endswith("/")):
        raise ConfigError("server.docs_url: must be empty or an http(s) URL ending in /, like "
                          "https://docs.example/registry-ext/docs/")
    prefix = settings.redis.key_prefix
    if not prefix or any(c in prefix for c in "{}: \t\n*?[]"):
        raise ConfigError("redis.key_prefix: must be non-empty, without braces, colons, spaces or globs")
    if settings.redis.url:
        from registry_ext.index.connection import BadRedisURL, parse

        try:
            parse(settings.redis.url)
        except BadRedisURL as exc:
            raise ConfigError(str(exc)) from None
    if not settings.storage.root:
        raise ConfigError("storage.root: must not be empty")
    sections.validate_storage(settings, ConfigError)
    sections.validate_mirror(settings.mirror, ConfigError)
    sections.validate_proxy(settings.proxy, ConfigError)
    clash = sorted(set(settings.mirror.remotes) & set(settings.proxy.upstreams))
    if clash:  # mirror-diff's remote= names either; one name must not mean two registries
        raise ConfigError(f"mirror.remotes.{clash[0]}: proxy.upstreams has an upstream of the same name; "
                          "mirror-diff compares with upstreams by name, so rename one of them")
    from registry_ext.auth.settings import validate_auth

    validate_auth(settings.auth, ConfigError)
    sections.validate_feed(settings.feed, ConfigError)
    sections.validate_webhooks(settings.webhooks, ConfigError)
    sections.validate_gc(settings.gc, ConfigError)
    sections.validate_tag_rules(settings, ConfigError)
