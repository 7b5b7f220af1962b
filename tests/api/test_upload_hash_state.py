"""The running hash of an upload session, saved by each PATCH so the finishing PUT does not read the blob back.

``services/blobs.UploadService`` feeds every appended byte to a resumable SHA-256
(``oci/resumable.py``); a PATCH saves its state as ``uploads/<id>/hash.json`` with the
offset it describes, after fdatasyncing the data. The finishing request resumes it only
for exactly that offset; a missing, stale or foreign state means the data is read back,
so every path still verifies the whole blob.
"""
from __future__ import annotations

import hashlib

import orjson

from tests.support.oci_client import OCTET, assert_error, blob_status, location, open_session, sha256_digest, with_query
from tests.support.push_helpers import BLOB_A, NAME

FIRST, REST = BLOB_A[:1000], BLOB_A[1000:]


def patch(client, loc: str, data: bytes) -> str:
    resp = client.patch(loc, data=data, headers=OCTET)
    assert resp.status_code == 202, resp.get_data()
    return location(resp)


def state_file(app, loc: str):
    return app.extensions["registry"].storage.layout.upload_hash(loc.rsplit("/", 1)[1].split("?")[0])


def test_each_patch_saves_the_state_of_every_byte_so_far(app, client):
    loc = patch(client, open_session(client, NAME), FIRST)
    assert orjson.loads(state_file(app, loc).read_bytes())["offset"] == len(FIRST)
    loc = patch(client, loc, REST)
    assert orjson.loads(state_file(app, loc).read_bytes())["offset"] == len(BLOB_A)
    resp = client.put(with_query(loc, digest=sha256_digest(BLOB_A)))
    assert resp.status_code == 201, resp.get_data()
    assert client.get(f"/v2/{NAME}/blobs/{sha256_digest(BLOB_A)}").get_data() == BLOB_A


def test_a_resumed_state_still_refuses_another_digest(app, client):
    loc = patch(client, open_session(client, NAME), BLOB_A)
    assert_error(client.put(with_query(loc, digest=sha256_digest(BLOB_A + b"x"))), 400, "DIGEST_INVALID")
    assert blob_status(client, NAME, sha256_digest(BLOB_A)) == 404


def test_a_stale_state_is_ignored_and_the_data_read_back(app, client):
    loc = patch(client, open_session(client, NAME), FIRST)
    path = state_file(app, loc)
    saved = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps({"offset": len(FIRST) - 1, "state": saved["state"]}))
    resp = client.put(with_query(loc, digest=sha256_digest(BLOB_A)), data=REST, headers=OCTET)
    assert resp.status_code == 201, resp.get_data()


def test_a_foreign_or_broken_state_is_ignored_and_the_data_read_back(app, client):
    for state in ("sha256:another openssl:00", "sha256:not hex", None):
        loc = patch(client, open_session(client, NAME), FIRST)
        path = state_file(app, loc)
        path.write_bytes(b"{torn" if state is None else orjson.dumps({"offset": len(FIRST), "state": state}))
        resp = client.put(with_query(loc, digest=sha256_digest(BLOB_A)), data=REST, headers=OCTET)
        assert resp.status_code == 201, resp.get_data()


def test_a_sha512_upload_after_a_patch_is_read_back(client):
    digest = "sha512:" + hashlib.sha512(BLOB_A).hexdigest()
    loc = patch(client, open_session(client, NAME), FIRST)
    resp = client.put(with_query(loc, digest=digest), data=REST, headers=OCTET)
    assert resp.status_code == 201, resp.get_data()
