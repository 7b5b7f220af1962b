"""The app factory: settings → storage + index + services → Flask app."""
from __future__ import annotations

import logging

import redis
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from registry_ext import failpoints, metrics
from registry_ext.api import request_id
from registry_ext.api.http import Response
from registry_ext.api.converters import RepoNameConverter, SegmentConverter
from registry_ext.api.slow_bodies import BodyWatch
from registry_ext.config import Settings, load_settings
from registry_ext.index.leases import LeaseBusy, LeaseLost
from registry_ext.errors import ErrorCode, RegistryError, register_error_handlers, render
from registry_ext.services import build_registry, mirror_evict
from registry_ext.services.maintenance import Maintenance
from registry_ext.storage.atomic import is_storage_full
from registry_ext.storage.driver.base import DriverError, StorageFull
from registry_ext.tag_rules import parse_retention

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the registry app; without ``settings`` they come from the environment."""
    settings = settings or load_settings()
    failpoints.configure(settings.testing.failpoints_file)
    app = Flask("registry_ext", static_folder=None)
    app.response_class = Response
    app.config["SETTINGS"] = settings
    app.config["MANIFEST_MAX_BYTES"] = settings.limits.manifest_max_bytes
    app.url_map.converters["repo"] = RepoNameConverter
    app.url_map.converters["segment"] = SegmentConverter
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False  # `a//b` is an invalid name, not `a/b`
    app.extensions["registry"] = registry = build_registry(settings, create_root=True)
    app.extensions["maintenance"] = maintenance = Maintenance(registry, settings.redis.watch_interval_ms,
                                                              tuple(settings.webhooks.endpoints), settings.gc,
                                                              _retention(settings, registry))
    maintenance.first_look()
    register_error_handlers(app)
    app.register_error_handler(redis.RedisError, _index_unavailable)
    app.register_error_handler(OSError, _storage_error)
    app.register_error_handler(DriverError, _object_store_error)
    app.register_error_handler(LeaseBusy, _lease_error)
    app.register_error_handler(LeaseLost, _lease_error)
    request_id.init_app(app)
    metrics.init_app(app, settings.metrics.enabled, lambda: registry.storage.uploads.counts("", "").total,
                     maintenance.housekeeping.state)
    _webhooks(app, settings, registry)
    if settings.server.trusted_proxies:
        hops = settings.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    from registry_ext.api import health, mirror_diff, ui
    from registry_ext.api.v2 import bp as v2, proxied

    mirror_diff.init_app(app)
    proxied.init_app(app, settings)
    app.extensions["body_watch"] = BodyWatch(settings.limits, registry.uploads)

    app.register_blueprint(v2)
    app.register_blueprint(health.bp)
    app.register_blueprint(ui.bp)
    if settings.metrics.enabled:
        app.register_blueprint(health.metrics_bp)
    _access_control(app, settings, registry)
    return app


def _access_control(app: Flask, settings: Settings, registry) -> None:
    """[auth]: /auth/token when we issue tokens, then the hook in front of every view (last:
    it checks that every endpoint registered above declares what it needs)."""
    if settings.auth.scheme == "none":
        app.extensions["auth"] = None
        return
    from registry_ext.api import token
    from registry_ext.auth import gate
    from registry_ext.auth.core import build_auth
    from registry_ext.index.throttle import LoginThrottle

    auth = build_auth(settings, LoginThrottle(registry.index.client, settings.redis.key_prefix))
    if auth.issuer is not None:
        app.register_blueprint(token.bp)
    gate.init_app(app, auth)


def create_worker_app(settings: Settings | None = None) -> Flask:
    """The app as a gunicorn worker runs it: ``create_app`` plus the index maintenance thread
    (services/maintenance.py), which rebuilds, verifies and repairs the index by itself, and the
    webhook delivery threads (services/webhooks.py) when endpoints are configured."""
    app = create_app(settings)
    app.extensions["maintenance"].start()
    webhooks = app.extensions.get("webhooks")
    if webhooks is not None:
        webhooks.start()
    return app


def _webhooks(app: Flask, settings: Settings, reg) -> None:
    """The delivery threads (started by ``create_worker_app``), counted in the metrics."""
    if not (settings.webhooks.endpoints and settings.feed.enabled):
        return
    from registry_ext.services.webhooks import WebhookDispatcher, endpoints_of

    measured = app.extensions.get(metrics.EXTENSION)
    dispatcher = WebhookDispatcher(reg.index, endpoints_of(settings), settings.webhooks.dead_letter_max,
                                   measured.webhook_outcome if measured else None)
    app.extensions["webhooks"] = dispatcher
    if measured is not None:
        measured.webhooks.update(dispatcher.stores)


def _index_unavailable(exc: redis.RedisError):
    """Redis down or failing: a 503 in the OCI envelope, never a traceback."""
    log.error("index unavailable (request %s): %s", request_id.current(), exc)
    return render(RegistryError(ErrorCode.UNSUPPORTED, status=503,
                                message="registry index temporarily unavailable",
                                headers={"Retry-After": "1"}))


def _storage_error(exc: OSError):
    """A full disk (ENOSPC, EDQUOT): 507 in the OCI envelope, saying so. Any other OSError goes
    on to the usual 500 (raised again: Flask logs it and renders the generic envelope)."""
    if not is_storage_full(exc):
        raise exc
    log.error("storage full (request %s): %s", request_id.current(), exc)
    return render(RegistryError(ErrorCode.UNSUPPORTED, {"reason": exc.strerror or "no space left on device"},
                                status=507, message="insufficient storage: the registry's storage is full; "
                                                    "the write was not completed, retry once space is freed"))


def _object_store_error(exc: DriverError):
    """The object store refused or did not answer: 507 when it is full (quota), 503 with Retry-After
    when it is unavailable or failing (the write did not complete; nothing half of it is visible)."""
    log.error("object store (request %s): %s", request_id.current(), exc)
    if isinstance(exc, StorageFull):
        return render(RegistryError(ErrorCode.UNSUPPORTED, {"reason": exc.detail}, status=507,
                                    message="insufficient storage: the object store refused the write "
                                            "(quota or capacity); retry once space is freed"))
    return render(RegistryError(ErrorCode.UNSUPPORTED, {"reason": exc.detail[:300]}, status=503,
                                message="the object store is unavailable; retry later",
                                headers={"Retry-After": "5"}))


def _lease_error(exc: Exception):
    """A repository or upload lease (storage on S3: index/leases.py) stayed taken for the whole wait,
    or was lost before the index update: 503 with Retry-After. A lost lease leaves the write on storage
    with its journal entry; the reconciler indexes it, and a retry of the same push is idempotent."""
    log.warning("lease %s (request %s): %s", type(exc).__name__, request_id.current(), exc)
    lost = isinstance(exc, LeaseLost)
    return render(RegistryError(ErrorCode.UNSUPPORTED, status=503, headers={"Retry-After": "5"},
                                message="the repository's lock was lost before the write finished; retry"
                                if lost else "the repository is locked by a write that has not finished "
                                             "(or by a host that stopped); retry"))


def _retention(settings: Settings, registry):
    """Retention rules and mirror cache evictions for scheduled gc runs to apply first (None: none, or
    deletes are disabled)."""
    if not settings.storage.delete_enabled:
        return None
    return mirror_evict.scheduled(registry, parse_retention(settings.retention.rules),
                                  mirror_evict.configured(settings.proxy.upstreams))
