"""Requests racing the PUT that finishes an upload session, in a fixed interleaving.

The finishing PUT hashes the session's data file and then renames it into
the content-addressed blob store. A PATCH or DELETE of the same session that
arrives in between must not reach that file any more: a PATCH appending to
it would change a stored blob's bytes under its digest (found with racing
clients against gunicorn, tests/e2e/test_concurrency.py); a DELETE removing
it would make the PUT fail with a 500. Here the request is sent from inside
``BlobStore.adopt`` (the rename) and given time to do its damage.
"""
from __future__ import annotations

import hashlib
import threading

import pytest

from registry_ext.oci.digest import parse_digest

OCTET = {"Content-Type": "application/octet-stream"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Racer:
    """Sends one request from another thread while the finishing PUT renames the session's file."""

    def __init__(self, app):
        self.app = app
        self.request = None
        self.answers: list = []
        self.thread: threading.Thread | None = None

    def fire(self) -> None:
        if self.request is None or self.thread is not None:
            return
        self.thread = threading.Thread(target=lambda: self.answers.append(self.request(self.app.test_client())))
        self.thread.start()
        self.thread.join(0.5)  # done by now, unless it waits for the session (what it should do)

    def join(self) -> list:
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "the racing request never finished"
        return self.answers


@pytest.fixture
def racer(app, monkeypatch):
    store = app.extensions["registry"].storage.blobs
    real_adopt, racer = store.adopt, Racer(app)

    def adopt(dgst, src):
        racer.fire()
        real_adopt(dgst, src)

    monkeypatch.setattr(store, "adopt", adopt)
    yield racer
    racer.join()


def open_session(client, data: bytes) -> str:
    location = client.post("/v2/r/blobs/uploads/").headers["Location"]
    resp = client.patch(location, data=data, headers=dict(OCTET, **{"Content-Range": f"0-{len(data) - 1}"}))
    assert resp.status_code == 202
    return location


def stored(app, data: bytes) -> bytes | None:
    return app.extensions["registry"].storage.blobs.read(parse_digest(digest(data)))


def test_patch_racing_the_finishing_put_finds_the_session_gone_and_the_blob_intact(app, client, racer):
    data = b"layer bytes " * 1000
    location = open_session(client, data)
    extra = b"appended too late"
    racer.request = lambda c: c.patch(location, data=extra, headers=dict(
        OCTET, **{"Content-Range": f"{len(data)}-{len(data) + len(extra) - 1}"}))
    resp = client.put(f"{location}?digest={digest(data)}", headers=OCTET)
    assert resp.status_code == 201, resp.get_data()
    answers = racer.join()
    assert [a.status_code for a in answers] == [404], "the late PATCH was accepted"
    assert answers[0].json["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert stored(app, data) == data
    assert client.get(f"/v2/r/blobs/{digest(data)}").get_data() == data


def test_cancel_racing_the_finishing_put_leaves_the_blob_finished(app, client, racer):
    data = b"config bytes " * 100
    location = open_session(client, data)
    racer.request = lambda c: c.delete(location)
    resp = client.put(f"{location}?digest={digest(data)}", headers=OCTET)
    assert resp.status_code == 201, resp.get_data()
    assert [a.status_code for a in racer.join()] == [404]
    assert stored(app, data) == data
    assert client.get(location).status_code == 404
