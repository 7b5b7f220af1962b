"""Storage housekeeping inside `serve`: expired upload sessions, garbage collection, a killed run's leftovers.

The maintenance thread of every worker calls :meth:`Housekeeping.tick`
(services/maintenance.py). Every ``UPLOAD_SWEEP_SECONDS`` it removes
expired upload sessions (what ``registry-ext purge-uploads`` does by hand)
and the temp files of pull-through fills whose worker died (proxy/fill_writer.py)
and, with ``gc.enabled``, starts a collection in a thread of its own when
the last one recorded in Redis finished ``gc.interval_seconds`` ago. The
``{gc}`` lease lets one run at a time across workers and hosts, the CLI's
included (index/gc_state.py). Files a killed run left under ``gc/`` are put
back by the next tick that finds the lease free, whether gc is enabled or not.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import redis

from registry_ext.clock import now_ms
from registry_ext.config import GcSettings
from registry_ext.index import Index
from registry_ext.index.fills import FillIndex
from registry_ext.index.gc_state import GcState
from registry_ext.proxy import fill_writer
from registry_ext.services.gc import GarbageCollector, GcReport
from registry_ext.storage import Storage

log = logging.getLogger(__name__)

UPLOAD_SWEEP_SECONDS = 30


class LeaseLost(Exception):
    """The gc lease expired or was taken over while collecting: stop; the next run starts again."""


def run_gc(storage: Storage, state: GcState, grace_period_seconds: int, wait_s: float = 0.0,
           before: Callable[[], object] | None = None, index: Index | None = None) -> GcReport | None:
    """One collection holding the gc lease (waiting up to ``wait_s`` for it), recorded in Redis;
    None when another run holds the lease. ``before`` (retention rules, services/retention.scheduled)
    runs first under the same lease, so what it deletes is collected in the same run. ``index``: the
    catalog, for the repositories a run empties on object storage (services/gc.py).

    Raises:
        LeaseLost: the lease was lost half-way (what was removed stays removed; nothing is half done).
    """
    with state.hold(wait_s) as lease:
        if lease is None:
            return None

        def progress() -> None:
            if not state.still_held(lease):
                raise LeaseLost()

        if before is not None:
            before()
            progress()
        report = GarbageCollector(storage, grace_period_seconds, index).collect(progress=progress)
        state.record(now_ms(), int(report.duration_seconds * 1000), report.bytes_freed, report.blobs_deleted,
                     report.links_removed)
        return report


class Housekeeping:
    def __init__(self, storage: Storage, state: GcState, settings: GcSettings,
                 before_gc: Callable[[], object] | None = None, fills: FillIndex | None = None,
                 index: Index | None = None):
        self.storage = storage
        self.index = index  # the catalog, for repositories a run empties (services/gc.py)
        self.fills = fills  # the pull-through fill leases: temp files of dead fills are swept
        self.before_gc = before_gc  # retention rules, run first under the gc lease
        self.state = state
        self.settings = settings
        self._next = 0.0
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Sweep upload sessions and look at gc, at most every ``UPLOAD_SWEEP_SECONDS``."""
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + UPLOAD_SWEEP_SECONDS
        removed = self.storage.uploads.sweep()
        if removed:
            log.info("removed %d expired upload sessions", removed)
        if self.fills is not None and fill_writer.sweep(self.storage.layout, self.fills):
            log.info("removed the temp files of pull-through fills whose worker died")
        if self._thread is not None and self._thread.is_alive():
            return
        if self.storage.blobs.taken_pending() or (self.settings.enabled and self._gc_due()):
            self._thread = threading.Thread(target=self._work, name="gc", daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _gc_due(self) -> bool:
        return now_ms() - self.state.stats()["last_finished_ms"] >= self.settings.interval_seconds * 1000

    def _work(self) -> None:
        try:
            self._collect_or_recover()
        except LeaseLost:
            log.warning("gc lease lost half-way; the next run starts again")
        except redis.RedisError as exc:
            log.info("gc waits for Redis: %s", exc)
        except Exception:  # noqa: BLE001 - a failed run must not end the worker
            log.exception("gc run failed")

    def _collect_or_recover(self) -> None:
        with self.state.hold(0) as lease:
            if lease is None:
                return  # another worker or host runs it
            if not (self.settings.enabled and self._gc_due()):  # it may have finished elsewhere meanwhile
                restored = self.storage.blobs.recover_taken()
                if restored:
                    log.warning("put back %d files a killed gc run left under gc/", restored)
                return
        report = run_gc(self.storage, self.state, self.settings.grace_period_seconds, before=self.before_gc,
                        index=self.index)
        if report is not None:
            log.warning("gc: %s", {k: v for k, v in report.to_json().items() if k != "repositories"})
