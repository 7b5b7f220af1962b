"""Redis leases (index/leases.py) against a real redis-server: exclusion across holders, expiry of a
dead holder's lease, refresh while held, and that a lost lease is detected."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import redis

from registry_ext.index.leases import LeaseBusy, Leases


@pytest.fixture
def client(redis_server):
    return redis.Redis.from_url(redis_server, decode_responses=True)


def key(request) -> str:
    return f"lt:{request.node.name}:lease"


def test_exclusive_across_holders(client, request):
    """Two Leases objects stand for two hosts: never both inside."""
    hosts = [Leases(client, ttl_ms=2000), Leases(client, ttl_ms=2000)]
    inside, overlaps, done = [0], [0], []

    def work(leases):
        for _ in range(30):
            with leases.hold(key(request)):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0.001)
                inside[0] -= 1
        done.append(1)

    threads = [threading.Thread(target=work, args=(hosts[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 6 and overlaps[0] == 0


def test_dead_holder_expires(client, redis_server, request):
    """A process SIGKILLed while holding the lease blocks others only until its ttl."""
    code = ("import sys, time, redis; from registry_ext.index.leases import Leases; "
            "c = redis.Redis.from_url(sys.argv[1], decode_responses=True); l = Leases(c, ttl_ms=800); "
            "cm = l.hold(sys.argv[2]); cm.__enter__(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, redis_server, key(request)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    leases = Leases(client, ttl_ms=800, wait_s=0.2)
    with pytest.raises(LeaseBusy):
        with leases.hold(key(request)):
            pass
    started = time.monotonic()
    with Leases(client, ttl_ms=800, wait_s=5).hold(key(request)):
        waited = time.monotonic() - started
    assert waited < 2.0


def test_refreshed_while_held(client, request):
    leases = Leases(client, ttl_ms=300)
    with leases.hold(key(request)) as lease:
        time.sleep(1.0)  # three ttls: the refresher kept it
        assert leases.still_held(lease)
    assert leases.is_free(key(request))


def test_lost_lease_is_seen_and_not_released_by_its_old_holder(client, request):
    leases = Leases(client, ttl_ms=5000)
    with leases.hold(key(request)) as lease:
        client.set(key(request), "someone-else")  # taken over (as after an expiry)
        assert not leases.still_held(lease)
    assert client.get(key(request)) == "someone-else"


def test_try_hold(client, request):
    leases = Leases(client)
    with leases.try_hold(key(request)) as first:
        assert first is not None
        other = Leases(client)
        with other.try_hold(key(request)) as second:
            assert second is None
