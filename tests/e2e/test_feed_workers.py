"""The update feed on the real ``registry-ext serve`` (gunicorn, 2 workers): events of racing clients
exactly once and in each repository's order, a long-poll woken within 100 ms of a push, Redis flushed
or restarted under it, webhooks delivered across a restart of the registry."""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import pytest
import redis
import requests

from tests.support.e2e_feed import Follower, cursor, delete_tag, images, key, set_tag, timed_long_poll
from tests.support.e2e_oci import expect
from tests.support.e2e_server import RegistryServer, descendants
from tests.support.servers import free_port
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

REPOS = 6
OPERATIONS = 20


def operate(base: str, repo: str, seed: int) -> list[tuple]:
    """Random pushes, moves and deletes of a few tags; returns the events they must produce, in order."""
    rng = random.Random(seed)
    made = images(base, repo, 3)
    tags: dict[str, str] = {}
    expected = []
    for _ in range(OPERATIONS):
        tag = rng.choice(["a", "b", "c"])
        if tag in tags and rng.random() < 0.3:
            delete_tag(base, repo, tag)
            expected.append((repo, tag, "deleted", None, tags.pop(tag)))
            continue
        image = rng.choice(made)
        set_tag(base, repo, tag, image)
        old = tags.get(tag)
        if old != image[1]:
            expected.append((repo, tag, "moved" if old else "pushed", image[1], old))
        tags[tag] = image[1]
    return expected


def test_racing_writers_events_exactly_once_in_order(registry):
    base = registry.url
    follower = Follower(base, cursor(base), prefix="race/").start()
    expected: dict[str, list] = {}
    threads = [threading.Thread(target=lambda i=i: expected.__setitem__(f"race/r{i}", operate(base, f"race/r{i}", i)))
               for i in range(REPOS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    got = follower.finish()
    for repo, events in expected.items():
        assert [key(e) for e in got if e["repository"] == repo] == events, repo
    assert len(got) == sum(len(e) for e in expected.values())
    writers = {e.pid for e in registry.access_entries() if e.method == "PUT" and "/manifests/" in e.path}
    assert len(writers) == 2, f"the writes did not reach both workers: {writers}"


def test_a_long_poll_wakes_within_100_ms_of_a_push(registry):
    base = registry.url
    made = images(base, "wake/app", 1)
    delays = []
    for round_ in range(5):
        start = cursor(base, repository="wake/app")
        waiting = timed_long_poll(base, start, 30, repository="wake/app")
        time.sleep(0.5)
        set_tag(base, "wake/app", f"t{round_}", made[0])
        pushed = time.monotonic()
        waiting["thread"].join(30)
        assert [e["tag"] for e in waiting["resp"].json()["events"]] == [f"t{round_}"]
        delays.append(waiting["at"] - pushed)
    assert max(delays) <= 0.1, f"push-to-answer delays {delays}"


def test_a_flushed_redis_expires_cursors_and_the_feed_comes_back(registry):
    base = registry.url
    made = images(base, "flush/app", 1)
    set_tag(base, "flush/app", "1", made[0])
    old = cursor(base)
    client = redis.Redis.from_url(registry.redis_url)
    client.delete(*client.keys(f"{registry.key_prefix}:*"))  # this server's FLUSHDB
    deadline = time.monotonic() + 30
    while True:
        resp = requests.get(f"{base}/v2/_regext/updates", params={"cursor": old}, timeout=30)
        if resp.status_code == 410:
            break
        assert resp.status_code == 503 and time.monotonic() < deadline, resp.text
        time.sleep(0.2)
    fresh_cursor = resp.json()["errors"][0]["detail"]["cursor"]
    set_tag(base, "flush/app", "2", made[0])
    page = expect(requests.get(f"{base}/v2/_regext/updates", params={"cursor": fresh_cursor}, timeout=30), 200)
    assert [key(e) for e in page.json()["events"]] == [("flush/app", "2", "pushed", made[0][1], None)]
    recent = requests.get(f"{base}/v2/_regext/updates", params={"repository": "flush/app", "recent": 10}).json()
    assert [e["tag"] for e in recent["events"]] == ["1", "2"]  # the history before the flush, rebuilt


def test_a_restarted_embedded_redis_keeps_cursors_exact(embedded_registry):
    base = embedded_registry.url
    made = images(base, "aof/app", 1)
    set_tag(base, "aof/app", "1", made[0])
    start = cursor(base)
    time.sleep(1.5)  # the AOF is fsynced every second: nothing may be lost by a kill now
    redis_pid = next(pid for pid, cmd in descendants(embedded_registry.pid).items() if "redis-server" in cmd)
    os.kill(redis_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while requests.get(f"{base}/v2/_regext/updates", params={"cursor": start}, timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "the feed did not come back after the redis restart"
        time.sleep(0.2)
    set_tag(base, "aof/app", "2", made[0])
    page = expect(requests.get(f"{base}/v2/_regext/updates", params={"cursor": start}, timeout=30), 200)
    assert [key(e) for e in page.json()["events"]] == [("aof/app", "2", "pushed", made[0][1], None)]


def test_webhook_deliveries_survive_a_restart_of_the_registry(tmp_path, redis_server):
    port = free_port()  # nothing listens there yet: every attempt fails
    config = tmp_path / "registry.toml"
    config.write_text(f'[webhooks.endpoints.ci]\nurl = "http://127.0.0.1:{port}/hook"\nallow_private = true\n'
                      'timeout = 1\nbackoff_seconds = 0.2\nbackoff_max_seconds = 1\nmax_attempts = 100\n')
    server = RegistryServer(tmp_path / "server", redis_url=redis_server, key_prefix=f"hook{port}",
                            env={"REGISTRY_EXT_CONFIG": str(config)})
    server.start()
    receiver = None
    try:
        made = images(server.url, "hooked/app", 1)
        set_tag(server.url, "hooked/app", "1", made[0])
        time.sleep(2)  # a few failed attempts
        server.stop()
        receiver = Receiver(port=port)
        server.start()
        got = receiver.wait_for(1)
        events = json.loads(got[0].body)["events"]
        assert [key(e) for e in events] == [("hooked/app", "1", "pushed", made[0][1], None)]
        time.sleep(1)
        assert {r.headers["x-regext-delivery"] for r in receiver.received} == {json.loads(got[0].body)["id"]}
    finally:
        server.close()
        if receiver is not None:
            receiver.close()


def test_a_stop_answers_waiting_long_polls_at_once(registry):
    base = registry.url
    start = cursor(base, repository="stop/app")
    waiting = [timed_long_poll(base, start, 55, repository="stop/app") for _ in range(3)]
    time.sleep(1)
    stopping = time.monotonic()
    assert registry.stop() == 0
    assert time.monotonic() - stopping < 10
    for poll in waiting:
        poll["thread"].join(10)
        assert poll["resp"].status_code == 200 and poll["resp"].json()["events"] == []
    registry.start()  # the fixture's teardown stops it again
