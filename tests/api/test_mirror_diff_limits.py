"""The mirror-diff API against a remote that never answers: one deadline per comparison, a bounded
number of comparisons per worker, identical requests sharing one, and 429 at once beyond."""
from __future__ import annotations

import threading
import time

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from tests.support.fake_remote import SilentRemote
from tests.support.oci_client import assert_error

BUDGET = 2  # the remote's timeout: the whole comparison's deadline


@pytest.fixture
def silent():
    with SilentRemote() as remote:
        yield remote


@pytest.fixture
def app(settings, silent):
    return create_app(replace(settings, "mirror", remotes={"silent": {"url": silent.url, "timeout": BUDGET}},
                              max_comparisons=2, cache_seconds=5))


def concurrently(app, paths: list[str]) -> list[tuple[int, float, dict, dict]]:
    """GET every path at once, each from its own client; (status, seconds, json, headers) in order."""
    results: list = [None] * len(paths)
    start = threading.Barrier(len(paths))

    def one(i: int) -> None:
        client = app.test_client()
        start.wait()
        began = time.monotonic()
        resp = client.get(paths[i])
        results[i] = (resp.status_code, time.monotonic() - began, resp.get_json(), resp)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_identical_requests_share_one_comparison_and_the_rest_are_refused_at_once(app, silent):
    results = concurrently(app, ["/v2/app/_regext/mirror-diff?remote=silent"] * 6)
    answered = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert (len(answered), len(refused)) == (3, 3), [r[:2] for r in results]  # 1 running + 2 waiting
    for _status, seconds, body, _resp in answered:
        assert body["status"] == "error" and seconds < BUDGET + 1.5, (seconds, body)
    for _status, seconds, _body, resp in refused:
        assert_error(resp, 429, "TOOMANYREQUESTS")
        assert seconds < 1 and resp.headers["Retry-After"] == str(BUDGET), seconds
    assert silent.accepted == 1, silent.accepted  # one comparison, one connection, no retry past the deadline
    assert len({r[3].get_data() for r in answered}) == 1


def test_distinct_comparisons_beyond_the_bound_are_refused(app, silent):
    results = concurrently(app, [f"/v2/app{i}/_regext/mirror-diff?remote=silent" for i in range(5)])
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 200, 429, 429, 429], [r[:2] for r in results]
    assert all(r[1] < 1 for r in results if r[0] == 429)
    detail = [r[2]["errors"][0]["detail"] for r in results if r[0] == 429][0]
    assert detail == {"reason": "2 comparisons already running in this worker"}
    assert silent.accepted == 2
    # Once they are done, a slot is free again (and the answers are cached for cache_seconds).
    again = app.test_client().get("/v2/app9/_regext/mirror-diff?remote=silent")
    assert again.status_code == 200 and again.get_json()["status"] == "error"
