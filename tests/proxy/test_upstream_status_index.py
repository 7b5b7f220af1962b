"""index/upstream_status.py against a real redis-server: one fixed-size hash per upstream."""
from __future__ import annotations

import uuid

import redis

from registry_ext.index.connection import connect
from registry_ext.index.keys import Keys
from registry_ext.index.upstream_status import WINDOW_MS, Status, UpstreamStatus


def make(redis_server) -> tuple[UpstreamStatus, Keys]:
    keys = Keys(f"us{uuid.uuid4().hex[:8]}")
    return UpstreamStatus(connect(redis_server), keys), keys


def test_answers_and_errors_are_kept_in_one_small_hash(redis_server):
    status, keys = make(redis_server)
    assert status.read(["hub"]) == {"hub": Status()}
    status.answered("hub", 1_000)
    status.failed("hub", 2_000, "connection refused", None, "unavailable")
    status.failed("hub", 3_000, "HTTP 503", 503, "unavailable")
    status.failed("hub", 2_000 + WINDOW_MS, "HTTP 401", 401, "refused")  # a new window begins
    status.answered("hub", 2_000 + WINDOW_MS + 5)
    assert status.read(["hub", "quay"]) == {
        "hub": Status(ok_ms=2_000 + WINDOW_MS + 5, error_ms=2_000 + WINDOW_MS, error_reason="HTTP 401",
                      error_status=401, error_kind="refused", errors=3, window_ms=2_000 + WINDOW_MS,
                      window_errors=1),
        "quay": Status()}
    for at in range(100):
        status.failed("hub", 10 * WINDOW_MS + at, f"error {at}", 500, "unavailable")
    raw = connect(redis_server).hgetall(keys.upstream_status("hub"))
    assert len(raw) == 8 and raw["errors"] == "103" and raw["window_errors"] == "100"


def test_a_redis_that_does_not_answer_is_never_a_pulls_error(tmp_path):
    status = UpstreamStatus(redis.Redis(unix_socket_path=str(tmp_path / "none.sock"), decode_responses=True),
                            Keys("x"))
    status.answered("hub", 1)
    status.failed("hub", 2, "down", None, "unavailable")
    assert status.read(["hub"]) == {"hub": Status()}


def test_cached_repositories_and_their_freshness(redis_server):
    status, keys = make(redis_server)
    client = connect(redis_server)
    client.zadd(keys.repos, dict.fromkeys(("hub/library/a", "hub/library/b", "hub0", "hubx/c", "hu/d", "quay/x"), 0))
    assert status.cached("hub", 10) == (2, ["hub/library/a", "hub/library/b"])
    assert status.cached("hub", 1, after="hub/library/a") == (2, ["hub/library/b"])
    client.hset(keys.repo("hub/library/a").tags, mapping={"1": "d1", "2": "d2", "3": "d3"})
    client.hset(keys.repo("hub/library/a").mirror_checked, mapping={"1": 500, "2": 700})
    client.hset(keys.repo("hub/library/b").mirror_checked, mapping={str(i): i for i in range(5)})
    a, b = status.freshness(["hub/library/a", "hub/library/b"], scan_max=4)
    assert (a.tags, a.checked_tags, a.oldest_ms, a.newest_ms, a.scanned) == (3, 2, 500, 700, True)
    assert (b.tags, b.checked_tags, b.oldest_ms, b.newest_ms, b.scanned) == (0, 5, None, None, False)
