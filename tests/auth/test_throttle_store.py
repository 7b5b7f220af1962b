"""The failed-login counters (index/throttle.py) on a single redis-server and on a real 3-primary Cluster:
the same answers, every key expiring, no key naming the user."""
from __future__ import annotations

import pytest

from registry_ext.index.connection import connect
from registry_ext.index.throttle import KNOWN_MAX, LoginThrottle
from tests.support.redis_ha import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    group = Cluster(tmp_path_factory.mktemp("cluster")).start()
    yield group
    group.stop()


@pytest.fixture(params=["single", "cluster"])
def client(request, redis_server):
    url = redis_server if request.param == "single" else request.getfixturevalue("cluster").url
    return connect(url)


def test_counters_known_addresses_and_expiry(client, request):
    prefix = f"thr{abs(hash(request.node.name)) % 10**8}"
    throttle = LoginThrottle(client, prefix)
    for _ in range(3):
        throttle.failed("10.0.0.1", "alice", window=60)
    throttle.failed("10.0.0.2", "alice", window=60)
    state = throttle.state("10.0.0.1", "alice")
    assert (state.address_failures, state.user_failures, state.known_address) == (3, 4, False)
    assert 0 < state.address_ttl <= 60 and 0 < state.user_ttl <= 60
    assert throttle.state("10.0.0.2", "bob").address_failures == 1
    assert throttle.state("10.0.0.2", "bob").user_failures == 0
    for i in range(KNOWN_MAX + 5):
        throttle.succeeded(f"10.1.0.{i}", "alice")
    assert throttle.state(f"10.1.0.{KNOWN_MAX + 4}", "alice").known_address
    assert not throttle.state("10.1.0.0", "alice").known_address  # only the last KNOWN_MAX are kept
    keys = list(client.scan_iter(match=f"{prefix}:*")) if not hasattr(client, "get_nodes") else [
        key for node in client.get_primaries() for key in client.scan_iter(match=f"{prefix}:*", target_nodes=node)]
    assert keys and all("alice" not in key for key in keys)
    assert all(client.ttl(key) > 0 for key in keys)
