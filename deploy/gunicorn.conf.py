"""gunicorn settings for registry-ext behind nginx (docs/deployment.md).

    REGISTRY_EXT_CONFIG=/etc/registry-ext/registry.toml \
        gunicorn -c deploy/gunicorn.conf.py wsgi:app

Values come from the registry's own settings ([server] and [metrics] of the
TOML file named by REGISTRY_EXT_CONFIG, and the REGISTRY_EXT_* variables),
so this file and `registry-ext serve` run the same workers; the constants
live in registry_ext/gunicorn_setup.py. Command-line options and
GUNICORN_CMD_ARGS still override anything here (e.g. `--bind unix:/run/…`).

SIGHUP reloads gracefully: gunicorn re-reads this file and the registry
config, starts new workers (new code, new settings) and lets the old ones
finish their requests for up to graceful_timeout seconds.
"""
from registry_ext import gunicorn_setup as _setup
from registry_ext.config import load_settings as _load_settings

_settings = _load_settings()

# Where nginx's `upstream registry_ext` points (deploy/nginx.conf).
bind = f"{_settings.server.host}:{_settings.server.port}"

# gthread, measured against sync and gevent under a mixed load with slow uploaders
# (docs/deployment.md#choosing-the-worker-class): a slow client holds one thread, not a process.
worker_class = _setup.WORKER_CLASS
workers = _settings.server.workers  # server.workers (default 2: one per core)
threads = _settings.server.threads  # server.threads (default 16): workers x threads requests at once

# A gthread worker's main thread beats the heartbeat while threads serve requests, so `timeout`
# kills hung workers only; it never cuts off a long upload or download.
timeout = _settings.server.timeout
graceful_timeout = _setup.GRACEFUL_TIMEOUT  # SIGTERM / SIGHUP: seconds running requests get
keepalive = _setup.KEEPALIVE  # > nginx's upstream keepalive_timeout (4 s)

# Each worker builds the app after fork: Redis connections and Prometheus files per process.
preload_app = False

# nginx refuses oversized request lines and headers in the OCI envelope; gunicorn's own (text/html)
# limits are moved out of its way (values and reasons in registry_ext/gunicorn_setup.py).
limit_request_line = _setup.BEHIND_NGINX_LIMITS["limit_request_line"]
limit_request_fields = _setup.BEHIND_NGINX_LIMITS["limit_request_fields"]
limit_request_field_size = _setup.BEHIND_NGINX_LIMITS["limit_request_field_size"]

# nginx on this host sets X-Forwarded-*; the app trusts them per server.trusted_proxies.
forwarded_allow_ips = _setup.FORWARDED_ALLOW_IPS

accesslog = "-"  # stdout: journald / docker logs
errorlog = "-"
access_log_format = _setup.ACCESS_LOG_FORMAT
logger_class = _setup.AccessLogger  # gunicorn's logger, building only the atoms of that format
control_socket_disable = True  # gunicorn >= 25.1 (older versions ignore unknown names here)


def on_starting(server):
    """Master, once: create (or empty) metrics.dir and export PROMETHEUS_MULTIPROC_DIR."""
    _setup.start_metrics(_settings)


def on_exit(server):
    _setup.stop_metrics()


child_exit = _setup.child_exit  # drop a dead worker's live gauges
pre_fork = _setup.pre_fork  # stop signals blocked across the fork ...
post_fork = _setup.post_fork  # ... and kept for the worker, not lost while it boots
post_worker_init = _setup.post_worker_init  # gunicorn's own 400/414/431 answers as OCI JSON, not HTML
