"""Upload sessions are bounded: per client address, per repository and in total; a session that never
received a byte expires after limits.upload_idle_seconds, one that did keeps upload_ttl_seconds."""
from __future__ import annotations

import json
import threading

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from registry_ext.services.maintenance import Maintenance
from tests.support.oci_client import assert_error, push_blob, sha256_digest

CAPS = {"upload_sessions_per_client": 3, "upload_sessions_per_repo": 5, "upload_sessions_max": 8,
        "upload_idle_seconds": 60}


@pytest.fixture
def capped(settings):
    return create_app(replace(settings, "limits", **CAPS))


def post(client, repo: str, addr: str = "127.0.0.1", **query):
    return client.post(f"/v2/{repo}/blobs/uploads/", query_string=query, environ_base={"REMOTE_ADDR": addr})


def opened(client, repo: str, addr: str = "127.0.0.1") -> str:
    resp = post(client, repo, addr)
    assert resp.status_code == 202, resp.get_data()[:300]
    return resp.headers["Location"]


def refused(resp, limit: str) -> None:
    error = assert_error(resp, 429, "TOOMANYREQUESTS")["errors"][0]
    assert error["detail"]["limit"] == f"limits.{limit}", error
    assert resp.headers["Retry-After"] == "10"


def age(app, location: str, seconds: int) -> None:
    """Move a session's start ``seconds`` into the past."""
    folder = app.extensions["registry"].storage.layout.upload_dir(location.rsplit("/", 1)[1])
    info = json.loads((folder / "info.json").read_bytes())
    info["started_at"] -= seconds * 1000
    (folder / "info.json").write_text(json.dumps(info))


def test_one_address_is_capped_others_are_not(capped):
    client = capped.test_client()
    for _ in range(3):
        opened(client, "caps/a")
    refused(post(client, "caps/a"), "upload_sessions_per_client")
    refused(post(client, "caps/b"), "upload_sessions_per_client")  # its cap spans repositories
    digest = sha256_digest(b"whole")
    resp = client.post(f"/v2/caps/a/blobs/uploads/?digest={digest}", data=b"whole")
    refused(resp, "upload_sessions_per_client")  # a monolithic upload needs a session too
    opened(client, "caps/a", "203.0.113.7")


def test_one_repository_is_capped_others_are_not(capped):
    client = capped.test_client()
    for i in range(5):
        opened(client, "caps/busy", f"203.0.113.{i}")
    refused(post(client, "caps/busy", "203.0.113.99"), "upload_sessions_per_repo")
    opened(client, "caps/other", "203.0.113.99")


def test_the_store_is_capped(capped):
    client = capped.test_client()
    for i in range(8):
        opened(client, f"caps/r{i}", f"198.51.100.{i}")
    refused(post(client, "caps/new", "198.51.100.200"), "upload_sessions_max")


def test_finished_and_cancelled_sessions_free_their_slot(capped):
    client = capped.test_client()
    sessions = [opened(client, "caps/free") for _ in range(3)]
    refused(post(client, "caps/free"), "upload_sessions_per_client")
    assert client.delete(sessions[0]).status_code == 204
    digest = sha256_digest(b"done")
    assert client.put(f"{sessions[1]}?digest={digest}", data=b"done").status_code == 201
    opened(client, "caps/free")
    opened(client, "caps/free")


def test_sessions_that_never_received_a_byte_expire_and_free_the_cap(capped):
    client = capped.test_client()
    sessions = [opened(client, "caps/idle") for _ in range(3)]
    assert client.patch(sessions[0], data=b"some bytes").status_code == 202
    for location in sessions:
        age(capped, location, CAPS["upload_idle_seconds"] + 1)
    new = opened(client, "caps/idle")  # the cap was full: a sweep removed the two empty sessions
    uploads = capped.extensions["registry"].storage.layout.uploads
    assert {p.name for p in uploads.iterdir()} == {sessions[0].rsplit("/", 1)[1], new.rsplit("/", 1)[1]}
    for location in sessions[1:]:
        assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(client.patch(location, data=b"late"), 404, "BLOB_UPLOAD_UNKNOWN")
    resp = client.get(sessions[0])  # it received bytes: the long TTL
    assert resp.status_code == 204 and resp.headers["Range"] == "0-9"
    digest = sha256_digest(b"some bytes and the rest")
    assert client.put(f"{sessions[0]}?digest={digest}", data=b" and the rest").status_code == 201


def test_an_idle_session_is_unknown_once_expired(capped):
    client = capped.test_client()
    location = opened(client, "caps/late")
    age(capped, location, CAPS["upload_idle_seconds"] - 5)
    assert client.get(location).status_code == 204
    age(capped, location, 6)
    assert_error(client.patch(location, data=b"late"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not capped.extensions["registry"].storage.layout.upload_dir(location.rsplit("/", 1)[1]).exists()


def test_a_session_in_use_is_not_swept_under_its_request(capped):
    """A PATCH reading its first body holds the session (its data file's lock): the session is not idle."""
    client = capped.test_client()
    location = opened(client, "caps/busy")
    age(capped, location, CAPS["upload_idle_seconds"] + 1)
    uploads = capped.extensions["registry"].storage.uploads
    upload_id = location.rsplit("/", 1)[1]
    held, release = threading.Event(), threading.Event()

    def hold():
        with uploads.session(upload_id):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert uploads.sweep() == 0 and uploads.get(upload_id) is not None
        assert uploads.stale() == []  # `registry-ext check --repair` leaves it alone too
    finally:
        release.set()
        thread.join()
    assert uploads.stale() == [upload_id]
    assert uploads.sweep() == 1 and uploads.get(upload_id) is None


def test_the_maintenance_thread_sweeps_expired_sessions(capped):
    client = capped.test_client()
    idle, busy = opened(client, "caps/m"), opened(client, "caps/m")
    assert client.patch(busy, data=b"x").status_code == 202
    age(capped, idle, CAPS["upload_idle_seconds"] + 1)
    age(capped, busy, CAPS["upload_idle_seconds"] + 1)
    Maintenance(capped.extensions["registry"], 1000).tick()
    uploads = capped.extensions["registry"].storage.layout.uploads
    assert [p.name for p in uploads.iterdir()] == [busy.rsplit("/", 1)[1]]


def test_session_ids_count_by_repository_and_client_without_reading_files(capped):
    client = capped.test_client()
    a = opened(client, "caps/ids", "192.0.2.1").rsplit("/", 1)[1]
    b = opened(client, "caps/ids", "192.0.2.2").rsplit("/", 1)[1]
    c = opened(client, "caps/other", "192.0.2.1").rsplit("/", 1)[1]
    assert a[:6] == b[:6] != c[:6] and a[6:12] == c[6:12] != b[6:12] and len({a[12:], b[12:], c[12:]}) == 3
    counts = capped.extensions["registry"].storage.uploads.counts("caps/ids", "192.0.2.1")
    assert (counts.total, counts.repo, counts.client) == (3, 2, 2)
    assert push_blob(client, "caps/ids", b"still works")
