"""Keep the index whole without an operator: one background thread per worker.

Every ``redis.watch_interval_ms`` each worker reads the index marker and
Redis's ``run_id`` (index/meta.py, one round trip) and acts:

- no marker (a new or flushed Redis): listings answer 503 in this worker
  while one worker, holding the rebuild lock, rebuilds the index from
  storage; pushes go on (each repository is rebuilt under its lock);
- a marker from another ``run_id`` (Redis restarted or failed over, and
  may have lost its last writes): one worker verifies every repository
  against storage and repairs what differs, while everything is served;
- then it replays the journal: writes a killed worker or a Redis fault
  left half done (services/reconcile.py);
- then, if the update feed has no epoch (a new or flushed Redis, or a
  registry older than the feed), one worker builds it from the tag
  history on storage (services/feed_build.py).

Every ``UPLOAD_SWEEP_SECONDS`` it also does the storage housekeeping
(services/gc_schedule.py): it removes expired upload sessions (those that
never received a byte expire after ``limits.upload_idle_seconds``), whatever
Redis's state, as they count against the session caps; and it starts a
garbage collection when ``gc.enabled`` and one is due.

A Redis that cannot be reached makes the tick do nothing: requests answer
503 by themselves, and the next tick after Redis returns does the rest.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable

import redis

from registry_ext.config import GcSettings
from registry_ext.index.fills import FillIndex
from registry_ext.index.gc_state import GcState
from registry_ext.services import Registry
from registry_ext.services.check import verify_repo
from registry_ext.services.feed_build import FeedBuilder
from registry_ext.services.gc_schedule import Housekeeping
from registry_ext.services.reconcile import Reconciler
from registry_ext.services.reindex import gone_repos, reindex
from registry_ext.storage.atomic import is_storage_full

log = logging.getLogger(__name__)

JOURNAL_EVERY_S3 = 5.0  # seconds between looks at the journal on object storage (see _journal_due)
LOCK_TTL_MS = 30_000  # a rebuilder that died frees the lock this long after its last repository


class LockLost(Exception):
    """The rebuild lock expired or vanished (a flush) while working: start again later."""


class Maintenance:
    def __init__(self, reg: Registry, interval_ms: int, webhooks: tuple[str, ...] = (),
                 gc: GcSettings | None = None, before_gc: Callable[[], object] | None = None):
        self.reg = reg
        self.interval = interval_ms / 1000
        self.reconciler = Reconciler(reg.storage, reg.index)
        self._journal_at = float("-inf")
        self.feed_builder = FeedBuilder(reg.storage, reg.index, reg.feed, webhooks)
        gc = gc or GcSettings()
        self.housekeeping = Housekeeping(reg.storage, GcState(reg.index.client, reg.index.keys,
                                                              gc.lock_ttl_seconds * 1000), gc, before_gc,
                                         FillIndex(reg.index.client, reg.index.keys), reg.index)
        self.token = uuid.uuid4().hex
        self.steps: list[Callable[[], None]] = []  # more work each tick (the mirror's sync: proxy/sync.py)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def first_look(self) -> None:
        """Look at the index once, now: a new worker never serves a flushed index as complete,
        and the index (and update feed) of an empty storage are made complete at once."""
        self._guard(self.observe)
        if self._storage_empty():
            self._guard(self.feed_builder.run)

    def start(self) -> "Maintenance":
        """Loop in a daemon thread (after ``first_look``, which the app factory does)."""
        self._thread = threading.Thread(target=self._run, name="index-maintenance", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._guard(self.tick)

    def _guard(self, step) -> None:
        try:
            step()
        except redis.RedisError as exc:
            log.info("index maintenance waits for Redis: %s", exc)
        except OSError as exc:
            if not is_storage_full(exc):
                log.exception("index maintenance tick failed")
                return
            log.warning("index maintenance waits for storage space (journal entries kept): %s", exc)
        except Exception:  # noqa: BLE001 - the thread must outlive any one bad tick
            log.exception("index maintenance tick failed")

    def tick(self) -> None:
        """One round: storage housekeeping if due (upload sessions, gc), the index's state, a rebuild or
        verification if due, the journal."""
        self.housekeeping.tick()
        for step in self.steps:
            step()
        status = self.observe()
        if status.built_on is None:
            self._exclusive(self._rebuild, status.run_id)
        elif status.built_on != status.run_id:
            self._exclusive(self._verify, status.run_id)
        if not self.reg.index.state.rebuilding:
            if self._journal_due():
                self.reconciler.sweep()
            self.feed_builder.run()

    def _journal_due(self) -> bool:
        """Every tick on a filesystem (a folder listing); on S3 at most every JOURNAL_EVERY_S3 seconds
        per process: each look is a LIST request, which object stores bill, for entries that exist only
        after a crash, a Redis fault or a lost lease (the index then catches up a few seconds later)."""
        if not self.reg.storage.on_objects:
            return True
        now = time.monotonic()
        if now - self._journal_at < JOURNAL_EVERY_S3:
            return False
        self._journal_at = now
        return True

    def observe(self):
        """Set this process's index state from the marker; mark an index of empty storage complete."""
        index = self.reg.index
        status = index.meta.status()
        if status.built_on is None and self._storage_empty():
            index.meta.mark(status.run_id)
            status = index.meta.status()
        index.state.rebuilding = status.built_on is None
        return status

    def _storage_empty(self) -> bool:
        return next(iter(self.reg.storage.repos.names()), None) is None

    def _exclusive(self, work, run_id: str) -> None:
        """Run ``work`` holding the rebuild lock; other workers skip until the marker changes."""
        meta = self.reg.index.meta
        if not meta.acquire(self.token, LOCK_TTL_MS):
            return
        if meta.status().built_on == run_id:  # another worker finished it since we looked
            meta.release(self.token)
            return
        try:
            work()
        except LockLost:
            log.warning("index rebuild lock lost; starting again on the next tick")
            return
        except BaseException:
            meta.release(self.token)
            raise
        if meta.complete(self.token, run_id):
            self.reg.index.state.rebuilding = False

    def _keep_lock(self, _name: str = "") -> None:
        if not self.reg.index.meta.refresh(self.token, LOCK_TTL_MS):
            raise LockLost()

    def _rebuild(self) -> None:
        log.warning("index marker missing (new or flushed Redis): rebuilding from storage")
        counts = reindex(self.reg.storage, self.reg.index, progress=self._keep_lock)
        log.warning("index rebuilt: %s", counts)

    def _verify(self) -> None:
        log.warning("Redis restarted since the index was built: verifying it against storage")
        storage, index = self.reg.storage, self.reg.index
        repaired = []
        for name in storage.repos.names():
            self._keep_lock()
            if verify_repo(storage, index, name):
                repaired.append(name)
        index.write.drop_repos(gone_repos(storage, index))
        log.warning("index verified; repaired repositories: %s", repaired or "none")
