"""Prometheus metrics: requests by route, status and latency; body bytes; open uploads.

No import-time side effects: ``prometheus_client`` is imported by
:func:`init_app`, because it picks where values live (process memory, or
mmap'ed files shared by every gunicorn worker) from
``PROMETHEUS_MULTIPROC_DIR`` when *it* is first imported. The servers
(``registry-ext serve`` and ``deploy/gunicorn.conf.py``) call
:func:`prepare_dir` in the gunicorn master, which exports that variable
before any worker forks; each worker then writes its own files, ``/metrics``
merges all of them, and the ``child_exit`` hook calls :func:`mark_dead`,
which drops a dead worker's live gauges and folds its counters and
histograms into one archive file per type, so the folder holds a bounded
number of files however many workers died (:func:`compact`).
Without the variable (one process: tests, another WSGI server) the app keeps
its metrics in a registry of its own.

Metrics (``route`` is the Flask endpoint, e.g. ``v2.blobs.get_blob``, or
``unmatched``; it never holds a repository name, so cardinality is fixed)::

    registry_http_requests_total{route,method,status}        counter
    registry_http_request_duration_seconds{route,method}     histogram: until the response
                                                             headers are ready (a streamed
                                                             body is not included)
    registry_http_request_body_bytes_total{route}            body bytes read from clients
    registry_http_response_body_bytes_total{route,sent_by}   body bytes sent: sent_by="app",
                                                             or "nginx" for X-Accel-Redirect
    registry_http_requests_in_flight                         gauge, all live workers
    registry_upload_sessions_open                            gauge: upload sessions on
                                                             storage, counted at scrape
    registry_webhook_deliveries_total{endpoint,outcome}      counter: attempts "delivered",
                                                             "failed" (retried later), "dead"
    registry_webhook_pending{endpoint}                       gauge: deliveries queued or being
                                                             retried (Redis, at scrape)
    registry_webhook_dead_letters{endpoint}                  gauge: dead letters kept
    registry_gc_runs_total                                   counter: garbage collections finished
                                                             (any process: `serve` or the CLI; Redis)
    registry_gc_bytes_freed_total                            counter: blob bytes deleted by gc
    registry_gc_blobs_deleted_total                          counter: blobs deleted by gc
    registry_gc_links_removed_total                          counter: repository blob links removed
    registry_gc_last_run_timestamp_seconds                   gauge: when the last run finished (0: never)
    registry_gc_last_duration_seconds                        gauge: how long it took
    registry_gc_last_bytes_freed                             gauge: bytes it freed
    registry_gc_running                                      gauge: 1 while a run holds the gc lock
"""
from __future__ import annotations

import collections
import contextlib
import fcntl
import glob
import logging
import os
import shutil
import tempfile
import time
from typing import Callable

from registry_ext.storage.driver.base import DriverError

from flask import Flask, Response, current_app, g, request

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
EXTENSION = "registry_ext.metrics"
_STARTED = "registry_ext.started"
LOCK = ".lock"  # flock: /metrics reads shared, compact() rewrites the archives exclusive
ARCHIVED = ("counter", "histogram", "summary")  # additive types: a dead worker's values fold into the archive
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class Metrics:
    """The metric objects of one app, and the uploads folder counted at scrape time."""

    def __init__(self, count_sessions: Callable[[], int], gc_state=None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        self.dir = os.environ.get(ENV) or None
        if self.dir and values.ValueClass is values.MutexValue:
            log.warning("%s is set but prometheus_client was imported before it (preload_app?): "
                        "metrics are per worker process", ENV)
            self.dir = None
        self.count_sessions = count_sessions
        self.gc_state = gc_state  # index/gc_state.py GcState, read at scrape
        self.registry = None if self.dir else CollectorRegistry()
        reg = self.registry
        self.requests = Counter("registry_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=reg)
        self.latency = Histogram("registry_http_request_duration_seconds",
                                 "Seconds until the response headers were ready, by route and method.",
                                 ["route", "method"], buckets=BUCKETS, registry=reg)
        self.bytes_in = Counter("registry_http_request_body_bytes", "Request body bytes read.",
                                ["route"], registry=reg)
        self.bytes_out = Counter("registry_http_response_body_bytes",
                                 "Response body bytes, sent by the app or by nginx (X-Accel-Redirect).",
                                 ["route", "sent_by"], registry=reg)
        self.in_flight = Gauge("registry_http_requests_in_flight", "Requests being handled.",
                               multiprocess_mode="livesum", registry=reg)
        self.webhook_deliveries = Counter("registry_webhook_deliveries",
                                          "Webhook delivery attempts by endpoint and outcome.",
                                          ["endpoint", "outcome"], registry=reg)
        self.webhooks: dict = {}  # endpoint name -> index/hooks.py HookStore, read at scrape
        if reg is not None:
            reg.register(_UploadsCollector(count_sessions))
            reg.register(_WebhookCollector(self.webhooks))
            reg.register(_GcCollector(gc_state))
        self._children: dict = {}

    def webhook_outcome(self, endpoint: str, outcome: str) -> None:
        """Count one delivery attempt (services/webhooks.py calls this)."""
        self.child(self.webhook_deliveries, endpoint, outcome).inc()

    def child(self, metric, *labels: str):
        """``metric.labels(*labels)``, remembered: the lookup takes a lock and builds a key each time.

        The label values are routes, methods and statuses: a fixed, small set.
        """
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> bytes:
        """The exposition text of every live worker (or of this process)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        reg = self.registry
        if reg is None:
            assert self.dir is not None  # no registry of its own: the workers' shared folder
            reg = CollectorRegistry()
            MultiProcessCollector(reg, path=self.dir)
            reg.register(_UploadsCollector(self.count_sessions))
            reg.register(_WebhookCollector(self.webhooks))
            reg.register(_GcCollector(self.gc_state))
            with _locked(self.dir, fcntl.LOCK_SH):  # never half-way through a compaction
                return generate_latest(reg)
        return generate_latest(reg)


class _UploadsCollector:
    """``registry_upload_sessions_open``: sessions are folders on storage, shared by all workers."""

    def __init__(self, count_sessions: Callable[[], int]):
        self.count_sessions = count_sessions

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            count = self.count_sessions()
        except (OSError, DriverError):
            count = 0
        yield GaugeMetricFamily("registry_upload_sessions_open",
                                "Blob upload sessions on storage (not finished, cancelled or purged).",
                                value=count)


class _WebhookCollector:
    """Pending deliveries and dead letters per endpoint: state in Redis, shared by all workers."""

    def __init__(self, stores: dict):
        self.stores = stores

    def collect(self):
        import redis
        from prometheus_client.core import GaugeMetricFamily

        if not self.stores:
            return
        pending = GaugeMetricFamily("registry_webhook_pending", "Webhook deliveries queued or awaiting a retry.",
                                    labels=["endpoint"])
        dead = GaugeMetricFamily("registry_webhook_dead_letters", "Webhook dead letters kept.", labels=["endpoint"])
        try:
            for name, store in sorted(self.stores.items()):
                pending.add_metric([name], store.pending())
                dead.add_metric([name], store.dead_count())
        except redis.RedisError:
            return
        yield pending
        yield dead


class _GcCollector:
    """Garbage collection's totals and last run, kept in Redis by whichever process ran it."""

    def __init__(self, state):
        self.state = state

    def collect(self):
        import redis
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.state is None:
            return
        try:
            stats, running = self.state.stats(), self.state.running()
        except redis.RedisError:
            return
        for field, text in (("runs", "Garbage collections finished."),
                            ("bytes_freed", "Blob bytes deleted by garbage collection."),
                            ("blobs_deleted", "Blobs deleted by garbage collection."),
                            ("links_removed", "Repository blob links removed by garbage collection.")):
            yield CounterMetricFamily(f"registry_gc_{field}", text, value=stats[field])
        yield GaugeMetricFamily("registry_gc_last_run_timestamp_seconds", "When the last gc run finished.",
                                value=stats["last_finished_ms"] / 1000)
        yield GaugeMetricFamily("registry_gc_last_duration_seconds", "How long the last gc run took.",
                                value=stats["last_duration_ms"] / 1000)
        yield GaugeMetricFamily("registry_gc_last_bytes_freed", "Bytes the last gc run freed.",
                                value=stats["last_bytes_freed"])
        yield GaugeMetricFamily("registry_gc_running", "1 while a gc run holds the lock.", value=int(running))


class _CountingInput:
    """``wsgi.input`` that counts the bytes the app reads."""

    def __init__(self, stream):
        self.stream = stream
        self.count = 0

    def read(self, *args) -> bytes:
        data = self.stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args) -> bytes:
        data = self.stream.readline(*args)
        self.count += len(data)
        return data

    def __iter__(self):
        return iter(self.readline, b"")


def init_app(app: Flask, enabled: bool, count_sessions: Callable[[], int], gc_state=None) -> None:
    """Wrap the WSGI app and register the response hook (nothing when metrics are disabled)."""
    if not enabled:
        return
    metrics = app.extensions[EXTENSION] = Metrics(count_sessions, gc_state)
    inner = app.wsgi_app

    def measured(environ, start_response):
        environ[_STARTED] = time.perf_counter()
        environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])
        metrics.in_flight.inc()
        try:
            return inner(environ, start_response)
        finally:
            metrics.in_flight.dec()

    app.wsgi_app = measured  # type: ignore[method-assign]  # Flask's documented way to wrap the WSGI app
    app.after_request(_count)


def render() -> Response:
    """The ``/metrics`` response."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(current_app.extensions[EXTENSION].render(), content_type=CONTENT_TYPE_LATEST)


def note_offloaded(nbytes: int) -> None:
    """This response's body (``nbytes``) is sent by nginx, not by the app."""
    g.regext_offloaded = nbytes


def _count(resp):
    """Runs for every response, error responses included (Flask's ``finalize_request``)."""
    started = request.environ.get(_STARTED)
    if started is None:
        return resp
    m = current_app.extensions[EXTENSION]
    route = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
    method = request.method
    m.child(m.requests, route, method, str(resp.status_code)).inc()
    m.child(m.latency, route, method).observe(time.perf_counter() - started)
    body = request.environ.get("wsgi.input")
    if isinstance(body, _CountingInput) and body.count:
        m.child(m.bytes_in, route).inc(body.count)
    offloaded = g.pop("regext_offloaded", None)
    if offloaded is not None:
        m.child(m.bytes_out, route, "nginx").inc(offloaded)
    elif method != "HEAD" and resp.content_length:
        m.child(m.bytes_out, route, "app").inc(resp.content_length)
    return resp


# -- the gunicorn master's side ---------------------------------------------------------------

def prepare_dir(configured: str) -> tuple[str, bool]:
    """Create (or empty) the multiprocess folder and export it to the workers.

    Returns the folder and whether it is a private temporary one that the
    caller removes at exit (``metrics.dir`` empty). Files left by an earlier
    run are deleted: counters restart at zero with the server.
    """
    if configured:
        path, private = os.path.abspath(configured), False
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")) + glob.glob(os.path.join(path, "*.db.tmp")):
            os.remove(stale)
    else:
        path, private = tempfile.mkdtemp(prefix="registry-ext-metrics-"), True
    os.environ[ENV] = path
    return path, private


def mark_dead(pid: int) -> None:
    """gunicorn ``child_exit``: drop a dead worker's live gauges, fold its counters into the archive."""
    path = os.environ.get(ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)
        compact(path, pid)


def compact(path: str, pid: int) -> int:
    """Fold the counter, histogram and summary files of dead worker ``pid`` into ``<type>_archive.db``.

    prometheus_client keeps one file per type and process, and the merge at
    scrape time reads them all: without this, a server whose workers are
    restarted (reloads, crashes, ``max_requests``) gathers two files per dead
    worker for ever. The values of these types are sums over processes, so
    adding the dead worker's values to the archive's keeps every total. The
    archive is written to a temporary name and renamed over the old one, and
    the dead worker's file removed, under an exclusive lock that ``/metrics``
    takes shared: a scrape sees the values either before or after, never
    counted twice or missing. Only the gunicorn master calls this (one
    writer). Returns the number of files folded.
    """
    from prometheus_client.mmap_dict import MmapedDict

    dead = [f for typ in ARCHIVED for f in glob.glob(os.path.join(path, f"{typ}_{pid}.db"))]
    if not dead:
        return 0
    with _locked(path, fcntl.LOCK_EX):
        for file in dead:
            archive = os.path.join(path, os.path.basename(file).split("_")[0] + "_archive.db")
            totals: dict[str, float] = collections.defaultdict(float)
            for source in (archive, file):
                if os.path.exists(source):
                    for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(source):
                        totals[key] += value
            temp = archive + ".tmp"  # not *.db: the scrape's glob skips it
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)
            merged = MmapedDict(temp)
            try:
                for key, value in totals.items():
                    merged.write_value(key, value, 0.0)
            finally:
                merged.close()
            os.replace(temp, archive)
            os.remove(file)
    return len(dead)


@contextlib.contextmanager
def _locked(path: str, mode: int):
    """``flock`` the folder's lock file (created on first use) while the block runs."""
    fd = os.open(os.path.join(path, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
