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


def serve(settings: Settings, access_log: str | None = None) -> None:
    """Run in the foreground until SIGINT/SIGTERM."""
    from registry_ext.config import replace

    embedded = None
    if not settings.redis.url:
        from registry_ext.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(settings.storage.root).start()
        settings = replace(settings, "redis", url=embedded.url)
    os.makedirs(settings.storage.root, exist_ok=True)
    options = dict(gunicorn_setup.options(settings), accesslog=access_log)
    gunicorn_setup.start_metrics(settings)  # before any worker forks
    waiter = _start_waiter(settings) if settings.feed.wait_offload else None
    master = os.getpid()
    try:
        RegistryApplication(settings, options).run()
    finally:
        if os.getpid() == master:  # workers are forked inside run() and leave it by SystemExit too
            gunicorn_setup.stop_metrics()
            if waiter is not None:
                waiter.terminate()
                waiter.join(10)
            if embedded is not None:
                embedded.stop()


def _start_waiter(settings: Settings):
    """With nginx in front and feed.wait_offload set: the long-poll waiter (registry_ext/waiter/),
    a child process of this one, listening on feed.waiter_listen."""
    import multiprocessing

    from registry_ext.waiter.server import main as waiter_main

    proc = multiprocessing.get_context("fork").Process(target=waiter_main, args=(settings,), name="feed-waiter",
                                                       daemon=True)
    proc.start()
    return proc
