"""`registry-ext serve`: the app under gunicorn, with a private Redis when none is configured."""
from __future__ import annotations

import os

from gunicorn.app.base import BaseApplication

from registry_ext.config import Settings

ACCESS_LOG_FORMAT = 'pid=%(p)s %(h)s "%(r)s" %(s)s %(B)s %(M)sms'


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
        from registry_ext.app import create_app

        return create_app(self.settings)


def serve(settings: Settings, access_log: str | None = None) -> None:
    """Run in the foreground until SIGINT/SIGTERM."""
    from registry_ext.config import replace

    embedded = None
    if not settings.redis.url:
        from registry_ext.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(settings.storage.root).start()
        settings = replace(settings, "redis", url=embedded.url)
    os.makedirs(settings.storage.root, exist_ok=True)
    options = {
        "bind": f"{settings.server.host}:{settings.server.port}",
        "workers": settings.server.workers,
        # gthread: the worker's main thread keeps beating the arbiter's heartbeat while
        # threads serve long uploads and downloads, so `timeout` does not cut them off
        # (a sync worker is silent for a whole request and gets killed).
        "worker_class": "gthread",
        "threads": settings.server.threads,
        "timeout": settings.server.timeout,
        "control_socket_disable": True,  # gunicorn >= 25.1: else one shared ~/.gunicorn socket
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": access_log,
        "access_log_format": ACCESS_LOG_FORMAT,
    }
    try:
        RegistryApplication(settings, options).run()
    finally:
        if embedded is not None:
            embedded.stop()
