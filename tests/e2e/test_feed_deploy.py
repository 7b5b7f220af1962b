"""Long-polls of the update feed on the deploy/ stack (nginx, gunicorn, `registry-ext feed-waiter`):
handed to the waiter and held there, not by gunicorn threads; woken within 100 ms of a push; a
conditional poll that times out is a 304; a feed rebuilt under waiting polls sends them back to a
worker, which answers 410 with a fresh cursor."""
from __future__ import annotations

import time

import pytest
import redis
import requests

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_feed import cursor, images, key, set_tag, timed_long_poll
from tests.support.e2e_oci import expect

pytestmark = pytest.mark.e2e
HELD = 200  # long-polls held at once: more than the stack's 2 x 16 gunicorn threads


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    deploy = DeployStack(tmp_path_factory.mktemp("feed-deploy")).start()
    yield deploy
    deploy.stop()


def test_waiting_polls_hold_no_gunicorn_thread_and_all_wake_on_a_push(stack):
    base = stack.url
    made = images(base, "held/app", 1)
    start = cursor(base, repository="held/app")
    polls = [timed_long_poll(base, start, 30, repository="held/app") for _ in range(HELD)]
    time.sleep(2)
    assert not any(p.get("resp") for p in polls), "a long-poll was answered with nothing new"
    started = time.monotonic()
    listing = requests.get(f"{base}/v2/held/app/tags/list", timeout=10)  # gunicorn is free for other work
    assert listing.status_code == 200 and time.monotonic() - started < 1
    set_tag(base, "held/app", "1", made[0])
    pushed = time.monotonic()
    for poll in polls:
        poll["thread"].join(30)
    assert all([key(e) for e in p["resp"].json()["events"]] == [("held/app", "1", "pushed", made[0][1], None)]
               for p in polls)
    slowest = max(p["at"] for p in polls) - pushed
    assert slowest < 5, f"the last of {HELD} long-polls was answered {slowest:.2f} s after the push"
    deadline = time.monotonic() + 10  # nginx logs a request after answering it
    while len(stack.log_lines(stack.nginx_log, "uri=/_regext_wait/")) < HELD:
        assert time.monotonic() < deadline, "the long-polls did not go through the waiter's location"
        time.sleep(0.1)


def test_one_long_poll_wakes_within_100_ms(stack):
    base = stack.url
    made = images(base, "fast/app", 1)
    delays = []
    for round_ in range(5):
        waiting = timed_long_poll(base, cursor(base, repository="fast/app"), 30, repository="fast/app")
        time.sleep(0.5)
        set_tag(base, "fast/app", f"t{round_}", made[0])
        pushed = time.monotonic()
        waiting["thread"].join(30)
        assert [e["tag"] for e in waiting["resp"].json()["events"]] == [f"t{round_}"]
        delays.append(waiting["at"] - pushed)
    assert max(delays) <= 0.1, f"push-to-answer delays through nginx and the waiter: {delays}"


def test_a_poll_that_times_out_is_conditional(stack):
    base = stack.url
    start = cursor(base, repository="quiet/app")
    first = expect(requests.get(f"{base}/v2/_regext/updates", timeout=30,
                                params={"repository": "quiet/app", "cursor": start, "wait": 1}), 200)
    assert first.json() == {"events": [], "next": start, "more": False}
    again = requests.get(f"{base}/v2/_regext/updates", timeout=30, headers={"If-None-Match": first.headers["ETag"]},
                         params={"repository": "quiet/app", "cursor": start, "wait": 1})
    assert again.status_code == 304 and again.content == b""
    # _hop=3: the worker waits itself (as after three hand-offs): its answer carries the waiter's ETag
    worker = requests.get(f"{base}/v2/_regext/updates", timeout=30, headers={"If-None-Match": first.headers["ETag"]},
                          params={"repository": "quiet/app", "cursor": start, "wait": 1, "_hop": 3})
    assert worker.status_code == 304
    assert "uri=/v2/_regext/updates " in stack.wait_log_line(stack.nginx_log, "_hop=3")


def test_a_rebuilt_feed_sends_waiting_polls_back_with_a_fresh_cursor(stack):
    base = stack.url
    start = cursor(base, repository="rebuilt/app")
    waiting = timed_long_poll(base, start, 30, repository="rebuilt/app")
    time.sleep(1)
    client = redis.Redis(port=stack.redis_port)
    client.delete(*[k for k in client.keys("regext:*") if b"{feed}" in k])  # the feed lost, the index kept
    waiting["thread"].join(30)
    resp = waiting["resp"]
    assert resp.status_code == 410, resp.text
    assert resp.json()["errors"][0]["detail"]["reason"] == "cursor-expired"
    fresh_cursor = resp.json()["errors"][0]["detail"]["cursor"]
    made = images(base, "rebuilt/app", 1)
    set_tag(base, "rebuilt/app", "x", made[0])
    page = expect(requests.get(f"{base}/v2/_regext/updates", params={"cursor": fresh_cursor}, timeout=30), 200)
    assert [e["tag"] for e in page.json()["events"]] == ["x"]


def test_a_stopping_waiter_answers_its_polls_with_their_empty_page(tmp_path):
    deploy = DeployStack(tmp_path).start()
    try:
        start = cursor(deploy.url, repository="gone/app")
        waiting = [timed_long_poll(deploy.url, start, 55, repository="gone/app") for _ in range(20)]
        time.sleep(1.5)
        stopping = time.monotonic()
        assert deploy.services["waiter"].stop() == 0
        for poll in waiting:
            poll["thread"].join(10)
            assert poll["resp"].status_code == 200, poll["resp"].text
            assert poll["resp"].json() == {"events": [], "next": start, "more": False}
        assert time.monotonic() - stopping < 5
    finally:
        deploy.stop()


def test_a_long_poll_with_hundreds_of_names_in_its_query(stack):
    """The hand-off and the waiter's answer are response headers nginx must hold (4 KiB): a long list
    travels as a stored watch list, and the answer's Link names it."""
    base = stack.url
    made = images(base, "many/r299", 1)
    names = [f"many/r{i}" for i in range(300)]
    start = cursor(base, repository="many/r299")
    waiting = timed_long_poll(base, start, 30, repository=names)
    time.sleep(1)
    set_tag(base, "many/r299", "1", made[0])
    waiting["thread"].join(30)
    resp = waiting["resp"]
    assert resp.status_code == 200, resp.text
    assert [key(e) for e in resp.json()["events"]] == [("many/r299", "1", "pushed", made[0][1], None)]
    assert "watch=" in resp.headers["Link"] and "repository=" not in resp.headers["Link"]
