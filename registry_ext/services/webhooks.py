"""Webhook delivery: every worker process runs one thread per configured endpoint.

Each thread takes new feed entries from the endpoint's consumer group
(the group spreads them over the workers), queues the ones the endpoint
wants (its repositories and actions) and acknowledges the rest, then
makes the attempts that are due: a POST (services/webhook_http.py) of
``{"id": <delivery id>, "events": [<event>]}``. A failed attempt is
retried after ``backoff_seconds * 2^(k-1)`` (at most
``backoff_max_seconds``); after ``max_attempts`` the delivery becomes a
dead letter (``registry-ext webhooks dead-letters``). All of that state
is in Redis (index/hooks.py), so deliveries survive restarts of any or
all workers, at least once: a worker killed mid-attempt leaves the
delivery due again when its lease ends, and the receiver sees the same
``X-Regext-Delivery`` id again. Deliveries are not ordered.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

import orjson
import redis

from registry_ext.index import Index
from registry_ext.index.hooks import Due, HookStore
from registry_ext.services.webhook_http import DeliveryError, post
from registry_ext.webhook_config import Endpoint, parse_endpoint

log = logging.getLogger(__name__)

BATCH = 50
BLOCK_MS = 500
RECLAIM_EVERY = 10.0  # seconds between looks for entries a dead worker read and never queued
LEASE_MARGIN = 5.0    # an attempt holds its delivery for timeout + this (the attempt ends by its timeout)
Outcome = Callable[[str, str], None]  # (endpoint, "delivered" | "failed" | "dead")


def endpoints_of(settings) -> list[Endpoint]:
    return [parse_endpoint(name, table) for name, table in sorted(settings.webhooks.endpoints.items())]


class WebhookDispatcher:
    def __init__(self, index: Index, endpoints: list[Endpoint], dead_max: int, on_outcome: Outcome | None = None):
        self.index = index
        self.endpoints = endpoints
        self.dead_max = dead_max
        self.on_outcome = on_outcome or (lambda _endpoint, _outcome: None)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}"
        self.stores = {e.name: HookStore(index.client, index.keys, e.name) for e in endpoints}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "WebhookDispatcher":
        self._stop.clear()
        self._threads = []
        for endpoint in self.endpoints:
            thread = threading.Thread(target=self._run, args=(endpoint,), name=f"webhook-{endpoint.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, endpoint: Endpoint) -> None:
        store, group_ready, reclaimed = self.stores[endpoint.name], False, 0.0
        while not self._stop.is_set():
            try:
                if not group_ready:
                    group_ready = store.ensure_group()
                    if not group_ready:  # no feed stream yet (being built)
                        self._stop.wait(1)
                        continue
                if time.monotonic() - reclaimed > RECLAIM_EVERY:
                    self._queue(endpoint, store, store.reclaim(self.consumer, BATCH))
                    reclaimed = time.monotonic()
                self._queue(endpoint, store, store.take(self.consumer, BATCH, BLOCK_MS))
                self.attempt_due(endpoint, store)
            except redis.ResponseError as exc:
                group_ready = "NOGROUP" not in str(exc)
                if group_ready:
                    log.warning("webhook %s: %s", endpoint.name, exc)
                    self._stop.wait(1)
            except redis.RedisError as exc:
                log.info("webhook %s waits for Redis: %s", endpoint.name, exc)
                self._stop.wait(1)
            except Exception:  # noqa: BLE001 - the thread must outlive one bad round
                log.exception("webhook %s: delivery round failed", endpoint.name)
                self._stop.wait(1)

    def _queue(self, endpoint: Endpoint, store: HookStore, entries) -> None:
        wanted, skipped = [], []
        for entry in entries:
            action = orjson.loads(entry.data)["action"] if entry.repo else ""
            (wanted if entry.repo and endpoint.wants(entry.repo, action) else skipped).append(entry)
        store.accept(wanted, skipped)

    def attempt_due(self, endpoint: Endpoint, store: HookStore) -> int:
        """Make every attempt due now (each claimed first, so one worker makes it); return how many."""
        made = 0
        for delivery_id in store.due_ids(BATCH):
            if self._stop.is_set():
                break
            due = store.claim(delivery_id, int((endpoint.timeout + LEASE_MARGIN) * 1000))
            if due is not None:
                self.deliver(endpoint, store, due)
                made += 1
        return made

    def deliver(self, endpoint: Endpoint, store: HookStore, due: Due) -> str:
        body = b'{"id":' + orjson.dumps(due.id) + b',"events":[' + due.data.encode() + b"]}"
        try:
            post(endpoint, due.id, body)
        except DeliveryError as exc:
            retry_ms = int(endpoint.backoff(due.attempts + 1) * 1000)
            outcome = store.failed(due.id, retry_ms, endpoint.max_attempts, str(exc), self.dead_max)
            level = logging.WARNING if outcome == "dead" else logging.INFO
            log.log(level, "webhook %s: delivery %s failed (attempt %d): %s%s", endpoint.name, due.id,
                    due.attempts + 1, exc, "; moved to the dead letters" if outcome == "dead" else "")
            outcome = "dead" if outcome == "dead" else "failed"
        else:
            store.done(due.id)
            outcome = "delivered"
        self.on_outcome(endpoint.name, outcome)
        return outcome
