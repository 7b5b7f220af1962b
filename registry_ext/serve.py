"""`registry-ext serve`: the app under gunicorn, with a private Redis when none is configured."""
from __future__ import annotations

import os

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


def _claim_root(settings: Settings) -> None:
    """Accept (or create) the storage root before gunicorn starts; raise RootRefused (services/root.py)."""
    import redis

    from registry_ext.index import open_index
    from registry_ext.services.root import RootRefused, claim_root
    from registry_ext.storage import open_storage

    storage = open_storage(settings.storage.root, settings.limits.upload_ttl_seconds)
    index = open_index(settings.redis.url, settings.redis.key_prefix)
    try:
        claim_root(storage, index, create=True)
    except redis.RedisError as exc:
        raise RootRefused(f"storage root {settings.storage.root} holds no registry data, and the index at {settings.redis.url} "
                          f"could not be asked whether it lists repositories: {exc}") from None
    finally:
        index.client.close()


def serve(settings: Settings, access_log: str | None = None) -> None:
    """Run in the foreground until SIGINT/SIGTERM.

    Raises:
        RootRefused: the storage root is not a registry's (nothing was started but the embedded Redis).
    """
    from registry_ext.config import replace

    embedded = None
    if not settings.redis.url:
        from registry_ext.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(settings.storage.root).start()
        settings = replace(settings, "redis", url=embedded.url)
    master = os.getpid()
    try:
        _claim_root(settings)
        options = dict(gunicorn_setup.options(settings), accesslog=access_log)
        gunicorn_setup.start_metrics(settings)  # before any worker forks
        RegistryApplication(settings, options).run()
    finally:
        if os.getpid() == master:  # workers are forked inside run() and leave it by SystemExit too
            gunicorn_setup.stop_metrics()
            if embedded is not None:
                embedded.stop()
