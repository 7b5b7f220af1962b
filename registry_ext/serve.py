"""`registry-ext serve`: the app under gunicorn, with a private Redis when none is configured."""
from __future__ import annotations

import ipaddress
import os
import sys

from gunicorn.app.base import BaseApplication

from registry_ext import gunicorn_setup
from registry_ext.config import Settings


class RegistryApplication(BaseApplication):
    """Gunicorn application loading ``create_app`` in each worker (no preload)."""

    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self):
        from registry_ext.app import create_worker_app

        return create_worker_app(self.settings)


def serve(settings: Settings, access_log: str | None = None) -> None:
    """Run in the foreground until SIGINT/SIGTERM."""
    from registry_ext.config import replace

    warning = open_access_warning(settings)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    preflight_auth(settings)
    embedded = None
    if not settings.redis.url:
        from registry_ext.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(settings.storage.root).start()
        settings = replace(settings, "redis", url=embedded.url)
    os.makedirs(settings.storage.root, exist_ok=True)
    options = dict(gunicorn_setup.options(settings), accesslog=access_log)
    gunicorn_setup.start_metrics(settings)  # before any worker forks
    master = os.getpid()
    try:
        RegistryApplication(settings, options).run()
    finally:
        if os.getpid() == master:  # workers are forked inside run() and leave it by SystemExit too
            gunicorn_setup.stop_metrics()
            if embedded is not None:
                embedded.stop()


EVERY_USER_EVERYTHING = [{"repository": "**", "who": ["*"], "actions": ["*"]}]


def with_htpasswd(settings: Settings, path: str) -> Settings:
    """``serve --htpasswd``: Basic logins against ``path`` (the token scheme, if configured, stays); with
    no rules configured, every user in the file may do everything."""
    from registry_ext.config import replace

    auth = settings.auth
    return replace(settings, "auth", scheme="token" if auth.scheme == "token" else "basic",
                   htpasswd=os.path.abspath(path), rules=auth.rules or EVERY_USER_EVERYTHING)


def preflight_auth(settings: Settings) -> None:
    """Read the htpasswd and key files (and make the signing key) once in the master, before any worker:
    a missing file is a clear error here instead of workers failing to boot.

    Raises:
        ConfigError
    """
    from registry_ext.auth.core import build_auth

    build_auth(settings, throttle=None)


def open_access_warning(settings: Settings) -> str | None:
    """One line when the registry listens beyond loopback without access control (docs/auth.md)."""
    if settings.auth.scheme != "none":
        return None
    host = settings.server.host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        loopback = False
    if loopback:
        return None
    return (f"WARNING: listening on {settings.server.host} without authentication: anyone who can reach "
            f"port {settings.server.port} can push and delete (set [auth] scheme, see docs/auth.md)")
