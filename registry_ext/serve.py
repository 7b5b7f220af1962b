"""`registry-ext serve`: the app under gunicorn, with a private Redis when none is configured."""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from registry_ext import gunicorn_setup
from registry_ext.config import Settings


class StartupError(Exception):
    """serve cannot start; the message says what failed and what to do (one line)."""


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
    from registry_ext.services.storage_setup import open_configured_storage

    index = open_index(settings.redis.url, settings.redis.key_prefix)
    storage = open_configured_storage(settings, index)
    try:
        claim_root(storage, index, create=True)
    except redis.RedisError as exc:
        raise RootRefused(f"storage root {storage.where()} holds no registry data, and the index at "
                          f"{settings.redis.url} could not be asked whether it lists repositories: {exc}") from None
    finally:
        index.client.close()


def serve(settings: Settings, access_log: str | None = None) -> None:
    """Run in the foreground until SIGINT/SIGTERM.

    Raises:
        StartupError: the port is taken, the data directory cannot be written,
            or the embedded redis-server is missing or does not start.
        RootRefused: the storage root is not a registry's (nothing was started but the embedded Redis).
    """
    from registry_ext.config import replace

    check_port(settings.server.host, settings.server.port)
    check_data_dir(settings.storage.root)
    warning = open_access_warning(settings)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    preflight_auth(settings)
    embedded = None
    if not settings.redis.url:
        from registry_ext.embedded_redis import EmbeddedRedis, EmbeddedRedisError

        try:
            embedded = EmbeddedRedis(settings.storage.root).start()
        except EmbeddedRedisError as exc:
            raise StartupError(str(exc)) from None
        settings = replace(settings, "redis", url=embedded.url)
    waiter = None
    master = os.getpid()
    try:
        _claim_root(settings)
        options = dict(gunicorn_setup.options(settings), accesslog=access_log)
        gunicorn_setup.start_metrics(settings)  # before any worker forks
        waiter = _start_waiter(settings) if settings.feed.wait_offload else None
        RegistryApplication(settings, options).run()
    finally:
        if os.getpid() == master:  # workers are forked inside run() and leave it by SystemExit too
            gunicorn_setup.stop_metrics()
            if waiter is not None:
                waiter.terminate()
                waiter.join(10)
            if embedded is not None:
                embedded.stop()


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once, as gunicorn will, so a busy port fails at once with one line
    (gunicorn itself retries for five seconds and logs each attempt).

    Raises:
        StartupError: the address is in use, not local, or not allowed.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve --host {host!r} ({exc.strerror}); give an address such as "
                           "127.0.0.1") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            what = {errno.EADDRINUSE: "choose another --port or stop the process using it",
                    errno.EACCES: "ports below 1024 need privileges: choose a port of 1024 or more",
                    errno.EADDRNOTAVAIL: "give an address of this machine as --host"}
            raise StartupError(f"cannot listen on {host}:{port} ({exc.strerror}); "
                               f"{what.get(exc.errno or 0, 'check --host and --port')}") from None


def check_data_dir(root: str) -> None:
    """Check that the storage root can be written: a file in it, or (a new root, created later by the
    root check, services/root.py) the nearest folder that exists above it.

    Raises:
        StartupError: it cannot be created or written (a file in the way, a read-only mount...).
    """
    target = os.path.abspath(root)
    while not os.path.exists(target):
        target = os.path.dirname(target)
    try:
        if not os.path.isdir(target):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), target)
        if target == os.path.abspath(root):
            with tempfile.TemporaryFile(dir=target):
                pass
        elif not os.access(target, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), target)
    except OSError as exc:
        raise StartupError(f"data directory {root} is not writable ({exc.strerror}); choose a writable "
                           "directory with --data-dir (storage.root)") from None


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
    if settings.auth.scheme == "none":
        return  # nothing to read, and JWT and bcrypt stay unloaded in the master (issue #11, item 2)
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


def _start_waiter(settings: Settings):
    """With nginx in front and feed.wait_offload set: the long-poll waiter (registry_ext/waiter/),
    a child process of this one, listening on feed.waiter_listen."""
    import multiprocessing

    from registry_ext.waiter.server import main as waiter_main

    proc = multiprocessing.get_context("fork").Process(target=waiter_main, args=(settings,), name="feed-waiter",
                                                       daemon=True)
    proc.start()
    return proc
