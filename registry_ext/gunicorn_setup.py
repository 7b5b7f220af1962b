"""The gunicorn settings and master hooks of ``registry-ext serve`` and deploy/gunicorn.conf.py.

Both run the same workers (measured in docs/deployment.md, ``bench/workers.py``):
``gthread`` workers. A thread blocked on a slow client (an upload trickling
in through nginx, which does not buffer request bodies) holds one thread,
not a whole process, and the worker's main thread keeps beating the
arbiter's heartbeat, so ``timeout`` does not cut off long transfers (a sync
worker is silent for a whole request and is killed after ``timeout``).
"""
from __future__ import annotations

from registry_ext import metrics
from registry_ext.config import Settings

WORKER_CLASS = "gthread"
GRACEFUL_TIMEOUT = 30  # seconds running requests get on SIGTERM / SIGHUP before workers are killed
KEEPALIVE = 5          # seconds an idle keep-alive connection stays open; nginx's upstream
                       # keepalive_timeout (deploy/nginx.conf) must be shorter
FORWARDED_ALLOW_IPS = "127.0.0.1,::1"  # peers whose X-Forwarded-Proto gunicorn believes

# One line per request, key=value; `pid=` and `request="…"` are parsed by tests/e2e.
# bytes is what gunicorn sent: 0 for a blob handed to nginx with X-Accel-Redirect.
ACCESS_LOG_FORMAT = ('pid=%(p)s client=%(h)s request="%(r)s" status=%(s)s bytes=%(B)s ms=%(M)s '
                     'rid=%({x-request-id}o)s ua="%(a)s"')


def options(settings: Settings) -> dict:
    """gunicorn settings from the registry settings (``registry-ext serve``)."""
    server = settings.server
    return {
        "bind": f"{server.host}:{server.port}",
        "worker_class": WORKER_CLASS,
        "workers": server.workers,
        "threads": server.threads,
        "timeout": server.timeout,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": KEEPALIVE,
        "forwarded_allow_ips": FORWARDED_ALLOW_IPS,
        "access_log_format": ACCESS_LOG_FORMAT,
        "control_socket_disable": True,  # gunicorn >= 25.1: else one shared ~/.gunicorn socket
        "child_exit": child_exit,
    }


_private_metrics_dir: str | None = None  # module state: the config file is re-run on SIGHUP, this is not


def start_metrics(settings: Settings) -> None:
    """In the master, before any worker forks: prepare the metrics folder, export it."""
    global _private_metrics_dir
    if settings.metrics.enabled:
        path, private = metrics.prepare_dir(settings.metrics.dir)
        _private_metrics_dir = path if private else None


def stop_metrics() -> None:
    """In the master, at exit: remove the private metrics folder, if one was made."""
    global _private_metrics_dir
    if _private_metrics_dir:
        metrics.remove_dir(_private_metrics_dir)
        _private_metrics_dir = None


def child_exit(_server, worker) -> None:
    """gunicorn hook, in the master: a worker died; drop its live gauges."""
    metrics.mark_dead(worker.pid)
