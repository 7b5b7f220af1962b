"""Long-polls waiting inside the worker (no waiter process): woken by a matching event, not by others,
bounded in number (the excess answered at once), cut at their deadline. Through gunicorn and nginx:
tests/e2e/test_feed_workers.py and tests/e2e/test_feed_deploy.py."""
from __future__ import annotations

import threading
import time

from registry_ext.oci.repo_filter import build
from tests.support.feed_helpers import app_with, cursor_now, events
from tests.support.oci_client import make_image


def poll_in_thread(client, query: str) -> dict:
    out: dict = {}

    def run():
        resp = client.get(f"/v2/_regext/updates?{query}")
        out["at"] = time.monotonic()
        out["resp"] = resp

    out["thread"] = threading.Thread(target=run)
    out["thread"].start()
    return out


def test_a_push_wakes_the_waiting_poll(settings):
    app = app_with(settings, wait_max_seconds=20)
    cursor = cursor_now(app.test_client(), repository="w/app")
    waiting = poll_in_thread(app.test_client(), f"repository=w/app&cursor={cursor}&wait=20")
    time.sleep(0.5)
    assert waiting["thread"].is_alive()
    make_image(app.test_client(), "other/app", tag="1")  # not for this poll
    time.sleep(0.3)
    assert waiting["thread"].is_alive()
    made = make_image(app.test_client(), "w/app", tag="1")
    waiting["thread"].join(10)
    resp = waiting["resp"]
    assert events(resp) == [("w/app", "1", "pushed", made["manifest"], None)]


def test_the_excess_waiters_are_answered_at_once(settings):
    app = app_with(settings, wait_max_seconds=20, wait_threads=1)
    cursor = cursor_now(app.test_client(), repository="busy/app")
    first = poll_in_thread(app.test_client(), f"repository=busy/app&cursor={cursor}&wait=20")
    time.sleep(0.3)
    started = time.monotonic()
    second = app.test_client().get(f"/v2/_regext/updates?repository=busy/app&cursor={cursor}&wait=20")
    assert time.monotonic() - started < 2
    assert second.status_code == 200 and second.json["events"] == [] and second.headers["Retry-After"] == "10"
    make_image(app.test_client(), "busy/app", tag="1")
    first["thread"].join(10)
    assert [e[1] for e in events(first["resp"])] == ["1"]


def test_an_event_arriving_between_scan_and_wait_is_not_missed(settings):
    """The hub remembers recent entries: a poll positioned before one returns at once."""
    app = app_with(settings, wait_max_seconds=20)
    client = app.test_client()
    cursor = cursor_now(client, repository="race/app")
    warm = poll_in_thread(app.test_client(), f"repository=nothing&cursor={cursor}&wait=1")  # starts the hub
    warm["thread"].join(5)
    hub = app.extensions["registry_ext.feed_hub"]
    make_image(client, "race/app", tag="1")
    time.sleep(0.2)  # the hub has seen it
    position = app.extensions["registry"].feed.decode(cursor).id
    started = time.monotonic()
    assert hub.wait(build(["race/app"]), position, 5) == "woken" and time.monotonic() - started < 0.5
