"""Upload sessions on an object store (storage/object/uploads.py): counts, expiry, sweeping, stale, purge.

Run on the filesystem driver and on S3Driver against Ceph RGW, with StoreLocks leases in
the run's real redis-server (tests/support/object_uploads.py). A session is in use while a
request holds its lease; broken ones (no info.json, chunks that do not tile) go after a grace.
"""
from __future__ import annotations

import threading

import pytest

from registry_ext.storage.object import keys, uploads as object_uploads
from registry_ext.storage.upload_session import BUSY_GRACE_MS, UploadGone
from tests.support.object_uploads import IDLE, TTL, age, append, objects


def test_counts_by_repository_and_client(store):
    assert (store.counts("a", "b").total, store.sweep(), store.stale(), store.purge(0)) == (0, 0, [], 0)
    for repo, client in (("caps/ids", "192.0.2.1"), ("caps/ids", "192.0.2.2"), ("caps/other", "192.0.2.1")):
        store.create(repo, client)
    counts = store.counts("caps/ids", "192.0.2.1")
    assert (counts.total, counts.repo, counts.client) == (3, 2, 2)
    assert store.counts("none", "none").total == 3


def test_idle_and_old_sessions_expire_unless_in_use(driver, worker):
    store, other = worker(), worker()
    idle, busy, old, fresh = (store.create("a").id for _ in range(4))
    append(store, busy, b"bytes")
    append(store, old, b"bytes")
    for upload_id in (idle, busy):
        age(driver, upload_id, IDLE + 1)
    age(driver, old, TTL + 1)
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.session(old):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert store.stale() == [idle]
        assert store.sweep() == 1 and store.get(old) is not None  # expired, but a request holds it
    finally:
        release.set()
        thread.join()
    assert store.stale() == [old]
    assert store.get(old) is None and objects(driver, old) == {}  # get removes an expired session
    assert store.get(idle) is None and store.get(busy).size == 5 and store.get(fresh).size == 0
    with pytest.raises(UploadGone):
        append(store, idle, b"late")


def test_broken_sessions_are_swept_after_a_grace_period(driver, store, monkeypatch):
    no_info, gap = store.create("a").id, store.create("a").id
    append(store, no_info, b"abc")
    driver.delete(keys.upload_info(no_info))  # a crash half-way through ending it
    driver.put_content(keys.upload_chunk(gap, 10), b"not at the end")
    assert store.get(no_info) is None and store.get(gap) is None
    for upload_id in (no_info, gap):
        with pytest.raises(UploadGone):
            append(store, upload_id, b"x")
    assert store.sweep() == 0 and store.stale() == []  # changed a moment ago: maybe being created
    later = object_uploads.now_ms() + BUSY_GRACE_MS + 1000
    monkeypatch.setattr(object_uploads, "now_ms", lambda: later)
    assert store.stale() == sorted([no_info, gap])
    assert store.sweep() == 2 and objects(driver, no_info) == objects(driver, gap) == {}


def test_purge_removes_sessions_started_before_the_cutoff(driver, store):
    old, new = store.create("a").id, store.create("a").id
    for upload_id in (old, new):
        append(store, upload_id, b"abc")
    age(driver, old, 7200)
    assert store.purge(3600) == 1
    assert objects(driver, old) == {} and store.get(new) is not None
    driver.delete(keys.upload_info(new))  # no info: judged by its objects' age
    assert store.purge(3600) == 0 and store.purge(-1) == 1 and objects(driver, new) == {}


def test_unknown_and_malformed_ids(store):
    assert store.get("nope") is None and store.get("../../x") is None
    for upload_id in ("nope", "0" * 32):
        with pytest.raises(UploadGone):
            with store.session(upload_id):
                pass
    store.delete("../../x")  # ignored
