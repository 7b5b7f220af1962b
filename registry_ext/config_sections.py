"""The checks of the larger configuration sections ([mirror], [proxy], [feed], [webhooks], [gc], the tag
rules), kept out of config.py so that module stays a small reader of values. Pure: each raises
``error`` (config.ConfigError, passed in to keep the import one-way) naming the key at fault."""
from __future__ import annotations

import re
from typing import Any, Mapping

ACCEL_PREFIX = re.compile(r"(/[A-Za-z0-9_-]+)+")

HTTP_URL = re.compile(r"https?://[^/?#\s]+(/[^\s]*)?")
_REMOTE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
REMOTE_KEYS: dict[str, type | tuple[type, ...]] = {"url": str, "timeout": (int, float), "username": str,
                                                    "password": str, "realm": str}


def validate_mirror(mirror: Any, error: type[Exception]) -> None:
    if not 0 <= mirror.cache_seconds <= 3600:
        raise error("mirror.cache_seconds: must be 0-3600")
    if not 1 <= mirror.max_comparisons <= 64:
        raise error("mirror.max_comparisons: must be 1-64")
    for name, remote in mirror.remotes.items():
        where = f"mirror.remotes.{name}"
        if not _REMOTE_NAME.fullmatch(name):
            raise error(f"{where}: names are lowercase letters, digits, _ . - (at most 64)")
        if not isinstance(remote, Mapping):
            raise error(f"{where}: must be a table like {{ url = \"https://host\" }}")
        for key, value in remote.items():
            if key not in REMOTE_KEYS:
                raise error(f"unknown key {where}.{key}")
            if not isinstance(value, REMOTE_KEYS[key]) or isinstance(value, bool):
                raise error(f"{where}.{key}: wrong type {type(value).__name__}")
        if not str(remote.get("url", "")).startswith(("http://", "https://")):
            raise error(f"{where}.url: required, http:// or https://")
        if remote.get("realm") and not HTTP_URL.fullmatch(remote["realm"]):
            raise error(f"{where}.realm: an http:// or https:// URL, like https://auth.example/token")
        if not 0 < remote.get("timeout", 30) <= 300:
            raise error(f"{where}.timeout: must be in (0, 300] seconds")


def validate_proxy(proxy: Any, error: type[Exception]) -> None:
    from registry_ext.proxy.config import UpstreamConfigError, compile_globs, parse_upstream

    owner: dict[str, str] = {}
    for name, table in proxy.upstreams.items():
        try:
            upstream = parse_upstream(name, table)
        except UpstreamConfigError as exc:
            raise error(f"proxy.upstreams.{name}: {exc}") from None
        for host in upstream.hosts:
            if host in owner:
                raise error(f"proxy.upstreams.{name}.hosts: {host} is already a host of {owner[host]}")
            owner[host] = name
    if proxy.default_upstream and proxy.default_upstream not in proxy.upstreams:
        raise error("proxy.default_upstream: must be empty or the name of one of proxy.upstreams")
    try:
        compile_globs(proxy.local_names, "local_names")
    except UpstreamConfigError as exc:
        raise error(f"proxy.{exc}") from None


def validate_feed(feed: Any, error: type[Exception]) -> None:
    for where, value, low, high in (("retention_events", feed.retention_events, 100, 10_000_000),
                                    ("retention_days", feed.retention_days, 0, 3650),
                                    ("recent_per_repo", feed.recent_per_repo, 1, 10_000),
                                    ("page_max", feed.page_max, 1, 10_000),
                                    ("scan_max", feed.scan_max, 1, 1_000_000),
                                    ("max_repositories", feed.max_repositories, 1, 100_000),
                                    ("wait_max_seconds", feed.wait_max_seconds, 0, 3600),
                                    ("wait_threads", feed.wait_threads, 0, 10_000),
                                    ("watch_ttl_seconds", feed.watch_ttl_seconds, 60, 365 * 24 * 3600)):
        if not low <= value <= high:
            raise error(f"feed.{where}: must be {low}-{high}")
    if feed.wait_offload and not ACCEL_PREFIX.fullmatch(feed.wait_offload):
        raise error("feed.wait_offload: must be empty or a path like /_regext_wait")
    if not _LISTEN.fullmatch(feed.waiter_listen):
        raise error("feed.waiter_listen: must be host:port or unix:/absolute/path")


_LISTEN = re.compile(r"unix:/\S+|\[?[A-Za-z0-9.:-]+\]?:[0-9]{1,5}")


def validate_webhooks(webhooks: Any, error: type[Exception]) -> None:
    from registry_ext.webhook_config import EndpointError, parse_endpoint

    if not 1 <= webhooks.dead_letter_max <= 1_000_000:
        raise error("webhooks.dead_letter_max: must be 1-1000000")
    for name, table in webhooks.endpoints.items():
        try:
            parse_endpoint(name, table)
        except EndpointError as exc:
            raise error(f"webhooks.endpoints.{name}: {exc}") from None


def validate_gc(gc: Any, error: type[Exception]) -> None:
    for where, value, low, high in (("interval_seconds", gc.interval_seconds, 60, 365 * 86_400),
                                    ("grace_period_seconds", gc.grace_period_seconds, 0, 365 * 86_400),
                                    ("lock_ttl_seconds", gc.lock_ttl_seconds, 1, 3600)):
        if not low <= value <= high:
            raise error(f"gc.{where}: must be {low}-{high}")


def validate_tag_rules(settings: Any, error: type[Exception]) -> None:
    from registry_ext.tag_rules import RuleError, parse_immutable, parse_retention

    try:
        parse_immutable(settings.immutable_tags.rules)
        parse_retention(settings.retention.rules)
    except RuleError as exc:
        raise error(str(exc)) from None


STORAGE_DRIVERS = ("filesystem", "s3")


def validate_storage(settings: Any, error: type[Exception]) -> None:
    """``storage.driver`` and ``[storage.s3]``; what cannot work on object storage is refused here."""
    storage = settings.storage
    if storage.driver not in STORAGE_DRIVERS:
        raise error(f"storage.driver: must be one of {', '.join(STORAGE_DRIVERS)}")
    if storage.driver != "s3":
        if storage.s3:
            raise error("storage.s3: set storage.driver = \"s3\" to use it")
        return
    from registry_ext.storage.driver.s3_settings import s3_options

    s3_options(storage.s3, error)
    if settings.server.x_accel_prefix:
        raise error("server.x_accel_prefix: nginx cannot read blobs from S3; leave it empty "
                    "(storage.s3.redirect = true sends clients to the bucket instead)")
