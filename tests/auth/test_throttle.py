"""Failed logins are throttled per address and per user, in Redis (shared by workers), with expiring keys;
an address hammering a user does not lock that user out from elsewhere."""
from __future__ import annotations

import pytest

from tests.support.auth_helpers import basic, client_for, make_app
from tests.support.oci_client import assert_error


@pytest.fixture
def app(settings, tmp_path):
    return make_app(settings, tmp_path, failures_per_address=3, failures_per_user=5, failure_window_seconds=60)


def login(app, address: str, password: str | None = None, path: str = "/v2/"):
    return client_for(app, basic("alice", password), address).get(path)


def test_one_address_hammering_does_not_lock_the_user_out_elsewhere(app):
    for _ in range(3):
        assert_error(login(app, "10.0.0.66", "guess"), 401, "UNAUTHORIZED")
    resp = login(app, "10.0.0.66", "guess")
    assert_error(resp, 429, "TOOMANYREQUESTS")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert_error(login(app, "10.0.0.66"), 429, "TOOMANYREQUESTS")  # even the right password, from there
    assert login(app, "10.0.0.7").status_code == 200                 # the real user, from another address
    assert client_for(app, basic("bob"), "10.0.0.8").get("/v2/").status_code == 200


def test_many_addresses_against_one_user_spare_the_addresses_it_logs_in_from(app, settings, tmp_path):
    assert login(app, "10.0.1.1").status_code == 200  # alice's usual address
    for attacker in ("10.9.0.1", "10.9.0.2"):
        for _ in range(3):
            login(app, attacker, "guess")
    assert_error(login(app, "10.9.0.3", "guess"), 429, "TOOMANYREQUESTS")  # 6 failures for alice
    # Another worker (no credential cache of its own yet) sees the same counters in Redis.
    fresh = make_app(settings, tmp_path, failures_per_address=3, failures_per_user=5, failure_window_seconds=60)
    assert_error(login(fresh, "10.0.2.2"), 429, "TOOMANYREQUESTS")         # a new address waits
    assert login(fresh, "10.0.1.1").status_code == 200                    # a known one does not
    # A worker that verified alice's password already answers her from its cache, wherever she is:
    # only wrong passwords are throttled, and a cached one is right.
    assert login(app, "10.0.2.2").status_code == 200
    assert client_for(fresh, basic("bob"), "10.0.2.2").get("/v2/").status_code == 200


def test_token_endpoint_failures_count_too(settings, tmp_path):
    app = make_app(settings, tmp_path, scheme="token", failures_per_address=2, failures_per_user=50)
    for _ in range(2):
        assert_error(login(app, "10.1.0.1", "guess", "/auth/token"), 401, "UNAUTHORIZED")
    assert_error(login(app, "10.1.0.1", path="/auth/token"), 429, "TOOMANYREQUESTS")
    assert login(app, "10.1.0.2", path="/auth/token").status_code == 200


def test_counters_live_in_redis_and_expire(app, redis_client):
    login(app, "10.2.0.1", "guess")
    login(app, "10.2.0.1")
    prefix = app.config["SETTINGS"].redis.key_prefix
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=f"{prefix}:auth:*"))
    assert [k.rsplit(":", 1)[0] for k in keys] == [f"{prefix}:auth:fail:addr", f"{prefix}:auth:fail:user",
                                                    f"{prefix}:auth:known"]
    assert "alice" not in "".join(keys)
    for key in keys:
        assert 0 < redis_client.ttl(key) <= 30 * 24 * 3600
    assert redis_client.ttl(f"{prefix}:auth:fail:addr:10.2.0.1") <= 60
