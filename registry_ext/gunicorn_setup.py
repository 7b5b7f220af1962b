"""The gunicorn settings and master hooks of ``registry-ext serve`` and deploy/gunicorn.conf.py.

Both run the same workers (measured in docs/deployment.md, ``bench/workers.py``):
``gthread`` workers. A thread blocked on a slow client (an upload trickling
in through nginx, which does not buffer request bodies) holds one thread,
not a whole process, and the worker's main thread keeps beating the
arbiter's heartbeat, so ``timeout`` does not cut off long transfers (a sync
worker is silent for a whole request and is killed after ``timeout``).
"""
from __future__ import annotations

import datetime
import os
import signal

from gunicorn.glogging import Logger

from registry_ext import metrics
from registry_ext.config import Settings
from registry_ext.errors import ErrorCode, RegistryError

WORKER_CLASS = "gthread"
GRACEFUL_TIMEOUT = 30  # seconds running requests get on SIGTERM / SIGHUP before workers are killed
KEEPALIVE = 5          # seconds an idle keep-alive connection stays open; nginx's upstream
                       # keepalive_timeout (deploy/nginx.conf) must be shorter
FORWARDED_ALLOW_IPS = "127.0.0.1,::1"  # peers whose X-Forwarded-Proto gunicorn believes

# Behind nginx (deploy/gunicorn.conf.py only): nginx bounds the request line and each header line at 8 KiB
# and the header block at 32 KiB (large_client_header_buffers 4 8k) and answers over that in the OCI
# envelope. gunicorn's own limits (4094-byte line, 100 fields, 8190-byte field) would otherwise refuse
# some requests nginx let through (a 5,000-byte query, 100 headers, an X-Forwarded-For nginx lengthened)
# with a text/html 400 that nginx passes on, so they are raised out of nginx's way. `registry-ext serve`
# faces clients itself and keeps gunicorn's defaults.
BEHIND_NGINX_LIMITS = {
    "limit_request_line": 8190,         # gunicorn's maximum; nginx: 8 KiB with the line end
    "limit_request_fields": 32768,      # gunicorn's maximum; nginx: at most 32 KiB of headers
    "limit_request_field_size": 16384,  # nginx: 8 KiB per line, plus what nginx adds (X-Forwarded-For)
}

# One line per request, key=value; `pid=` and `request="…"` are parsed by tests/e2e. `time` is when the
# line was written, ISO 8601 in UTC with milliseconds (an atom of AccessLogger: gunicorn has none such).
# bytes is what gunicorn sent: 0 for a blob handed to nginx with X-Accel-Redirect.
ACCESS_LOG_FORMAT = ('time=%(time)s pid=%(p)s client=%(h)s request="%(r)s" status=%(s)s bytes=%(B)s ms=%(M)s '
                     'rid=%({x-request-id}o)s ua="%(a)s"')

# gunicorn's warning for a request whose first line ends in a bare LF. podman, skopeo and buildah try
# https:// first when a registry is not marked insecure; their TLS ClientHello sent to this plain-HTTP
# port is binary, holds a 0x0A byte before any CRLF and is refused (400) with this message.
BARE_LF = "bare LF as line terminator"
BARE_LF_NOTE = ("; usually a TLS handshake sent to this plain-HTTP port (podman, skopeo and buildah try "
                "https first unless the registry is marked insecure): harmless, docs/deployment.md#logs")


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
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "logger_class": AccessLogger,
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


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_unblock_in_master = False


def pre_fork(_server, _worker) -> None:
    """gunicorn hook, in the master just before it forks a worker: stop signals are blocked across the
    fork (the master unblocks them as soon as ``fork`` returns; the worker in ``post_fork``).

    Without it a SIGTERM reaching a worker between its fork and gunicorn's own handlers was lost:
    CPython drops signals that arrive before it has re-initialised itself in the child, and after that
    the worker runs the master's handlers, which only queue the signal in a (copied) master queue. The
    worker then came up, served, and held the master's stop for ``graceful_timeout`` until it was
    killed (seen in tests stopping a server that had just started). Blocked, the signal stays pending
    in the kernel until the worker can act on it."""
    global _unblock_in_master
    if not _unblock_in_master:
        os.register_at_fork(after_in_parent=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS))
        _unblock_in_master = True
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def post_fork(_server, worker) -> None:
    """gunicorn hook, in a worker just forked (signals still blocked by ``pre_fork``): a stop pending
    or arriving until gunicorn installs its handlers marks the worker not alive, so it exits as soon as
    its loop starts."""
    def stop(_sig, _frame):
        worker.alive = False

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def post_worker_init(worker) -> None:
    """gunicorn hook, in each worker: gunicorn's own refusals in the OCI envelope, as JSON; long-polls
    answered at once when the worker is asked to stop.

    gunicorn answers a request it cannot parse (a request line or header over
    its limits, a non-ASCII request target, a control character in a header
    value, a bad method or chunk) itself, before the app, with an HTML page;
    nginx passes that on. Its one writer of those pages is replaced in this
    worker process (status, reason and headers stay gunicorn's).

    On SIGTERM (a stop, a reload) gunicorn lets running requests finish for
    ``graceful_timeout``; a long-poll waiting in this worker (no waiter process,
    services/feed_wait.py) would hold the stop that long, so it is answered
    (an empty page: the client polls again, elsewhere) as the signal arrives.
    """
    from gunicorn import util

    from registry_ext.services import feed_wait

    util.write_error = write_oci_error
    stop = worker.handle_exit

    def handle_exit(sig, frame):
        stop(sig, frame)
        feed_wait.close_all()

    signal.signal(signal.SIGTERM, handle_exit)


def write_oci_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with an OCI error body (UNSUPPORTED; the reason in ``detail``)."""
    from gunicorn import util

    body = RegistryError(ErrorCode.UNSUPPORTED, {"source": "gunicorn", "reason": mesg[:300]}, status=status_int,
                         message=reason.lower()).body()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class AccessLogger(Logger):
    """gunicorn's logger, with the access line's atoms computed for ACCESS_LOG_FORMAT only.

    gunicorn builds every atom of every request (all request and response
    headers, the whole WSGI environ, a formatted time) for each access line:
    about 50 µs of a ~0.7 ms small request (measured: 93 µs against 44 µs per
    line written to a file). These are the atoms available here; a custom
    ``access_log_format`` may use them, other ones print ``-``.
    """

    def warning(self, msg, *args, **kwargs) -> None:
        """gunicorn's warnings, except a bare-LF request line: logged at INFO with its likely cause."""
        if isinstance(msg, str) and msg.startswith("Invalid request from ip=") and BARE_LF in msg:
            self.info(msg + BARE_LF_NOTE, *args, **kwargs)
            return
        super().warning(msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time) -> dict:
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        micros = request_time.seconds * 1_000_000 + request_time.microseconds
        return {
            "time": _utc_now_ms(),
            "h": environ.get("REMOTE_ADDR", "-"),
            "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "b": str(resp.sent) if getattr(resp, "sent", None) is not None else "-",
            "B": getattr(resp, "sent", None),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "D": micros,
            "M": micros // 1000,
            "p": f"<{os.getpid()}>",
            "{x-request-id}o": _header(resp.headers, "x-request-id"),
        }


def _utc_now_ms() -> str:
    """Now as ``2026-11-22T11:00:29.123Z``."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def _header(headers, name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return "-"
