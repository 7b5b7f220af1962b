"""Blob uploads and downloads against the real gunicorn (2 sync workers).

Every request goes out on a new TCP connection, so consecutive requests of a
single upload session are free to land on different worker processes: upload
state must live in shared storage/Redis, not in a worker's memory.
"""
from __future__ import annotations

import time

import pytest
import requests

from tests.support.e2e_oci import (TIMEOUT, absolute, blob_sha256_streamed, describe, digest_of, expect,
                     finish_upload, fresh, patch_chunk, push_blob, random_bytes,
                     start_upload, with_digest)

pytestmark = pytest.mark.e2e

CHUNK = 48 * 1024


def chunks_of(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield start, data[start:start + size]


def streamed(data: bytes, piece: int = 64 * 1024):
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    def gen():
        for start in range(0, len(data), piece):
            yield data[start:start + piece]
    return gen()


def get_blob(registry, repo: str, digest: str, **kwargs) -> requests.Response:
    return fresh("GET", f"{registry.url}/v2/{repo}/blobs/{digest}", **kwargs)


def upload_status(location: str) -> requests.Response:
    return fresh("GET", location)


def test_chunked_upload_patches_spread_over_workers(registry):
    repo = "e2e/chunks"
    data = random_bytes(20 * CHUNK + 1234, seed=1)  # 21 chunks
    digest = digest_of(data)
    location = start_upload(registry.url, repo)
    n_chunks = 0
    for start, chunk in chunks_of(data, CHUNK):
        location = patch_chunk(registry.url, location, start, chunk)
        n_chunks += 1
        time.sleep(0.02)  # let both idle workers race for the next accept()

    status = expect(upload_status(location), 204, "upload status: ")
    assert status.headers.get("Range") == f"0-{len(data) - 1}", describe(status)

    finish_upload(registry.url, location, digest, repo,
                  headers={"Content-Length": "0"})
    got = expect(get_blob(registry, repo, digest), 200)
    assert got.content == data
    assert got.headers.get("Docker-Content-Digest") == digest, describe(got)

    patches = registry.wait_for_entries(
        lambda e: e.method == "PATCH" and e.path.startswith(f"/v2/{repo}/blobs/uploads/"),
        n_chunks)
    assert len(patches) == n_chunks, (
        f"expected {n_chunks} PATCH lines in the access log, found {len(patches)}:\n"
        + "\n".join(e.line for e in registry.access_entries()[-50:]))
    pids = {e.pid for e in patches}
    assert len(pids) >= 2, (
        f"all {n_chunks} PATCHes (each on a new connection) were served by pid(s) {pids}; "
        f"expected at least 2 different gunicorn workers")
    workers = registry.worker_pids()
    assert pids <= workers, f"access-log pids {pids} are not worker processes {workers}"
    assert registry.pid not in pids, "the gunicorn master must not serve requests"


def test_transfer_encoding_chunked_patch(registry):
    repo = "e2e/te-patch"
    data = random_bytes(300_000, seed=2)
    digest = digest_of(data)
    location = start_upload(registry.url, repo)
    resp = fresh("PATCH", location, data=streamed(data),
                 headers={"Content-Type": "application/octet-stream"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in resp.request.headers
    expect(resp, 202, "streamed PATCH (chunked TE): ")
    assert resp.headers.get("Range") == f"0-{len(data) - 1}", describe(resp)
    location = absolute(registry.url, resp.headers["Location"])

    finish_upload(registry.url, location, digest, repo)
    assert expect(get_blob(registry, repo, digest), 200).content == data


def test_transfer_encoding_chunked_monolithic_put(registry):
    repo = "e2e/te-put"
    data = random_bytes(200_003, seed=3)
    digest = digest_of(data)
    location = start_upload(registry.url, repo)
    resp = fresh("PUT", with_digest(location, digest), data=streamed(data, 10_000),
                 headers={"Content-Type": "application/octet-stream"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    expect(resp, 201, "monolithic PUT with chunked TE: ")
    assert resp.headers.get("Docker-Content-Digest") in (None, digest), describe(resp)
    assert expect(get_blob(registry, repo, digest), 200).content == data

    # A chunked PUT whose bytes do not match the digest must be refused.
    wrong = start_upload(registry.url, repo)
    resp = fresh("PUT", with_digest(wrong, digest_of(b"something else")),
                 data=streamed(data, 10_000),
                 headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 400, describe(resp)
    assert "DIGEST_INVALID" in resp.text, describe(resp)


def test_multi_mib_blob_streamed_both_ways(registry):
    repo = "e2e/big"
    size = 16 * 1024 * 1024 + 17
    data = random_bytes(size, seed=4)
    digest = digest_of(data)
    location = start_upload(registry.url, repo)
    resp = fresh("PATCH", location, data=streamed(data, 256 * 1024),
                 headers={"Content-Type": "application/octet-stream"})
    expect(resp, 202, "16 MiB streamed PATCH: ")
    assert resp.headers.get("Range") == f"0-{size - 1}", describe(resp)
    location = absolute(registry.url, resp.headers["Location"])
    finish_upload(registry.url, location, digest, repo)

    head = expect(fresh("HEAD", f"{registry.url}/v2/{repo}/blobs/{digest}"), 200)
    assert head.headers.get("Content-Length") == str(size), describe(head)
    assert head.headers.get("Docker-Content-Digest") == digest, describe(head)
    assert head.content == b""

    got_digest, got_size, resp = blob_sha256_streamed(f"{registry.url}/v2/{repo}/blobs/{digest}")
    assert resp.status_code == 200, f"GET blob -> {resp.status_code}"
    assert resp.headers.get("Content-Length") == str(size), dict(resp.headers)
    assert (got_digest, got_size) == (digest, size)


def test_blob_range_get_and_head(registry):
    repo = "e2e/range"
    size = 3 * 1024 * 1024 + 5
    data = random_bytes(size, seed=5)
    digest = push_blob(registry.url, repo, data)
    url = f"{registry.url}/v2/{repo}/blobs/{digest}"

    head = expect(fresh("HEAD", url), 200, "HEAD blob: ")
    assert head.headers.get("Content-Length") == str(size), describe(head)
    assert head.headers.get("Docker-Content-Digest") == digest, describe(head)

    for first, last in [(0, 0), (1_048_576, 2_097_151), (size - 10, size - 1), (12345, 12345 + 99999)]:
        resp = fresh("GET", url, headers={"Range": f"bytes={first}-{last}"})
        expect(resp, 206, f"Range bytes={first}-{last}: ")
        assert resp.headers.get("Content-Range") == f"bytes {first}-{last}/{size}", describe(resp)
        assert resp.headers.get("Content-Length") == str(last - first + 1), describe(resp)
        assert resp.content == data[first:last + 1], f"wrong bytes for bytes={first}-{last}"

    resp = fresh("GET", url, headers={"Range": f"bytes={size - 1000}-"})
    expect(resp, 206, "open-ended Range: ")
    assert resp.headers.get("Content-Range") == f"bytes {size - 1000}-{size - 1}/{size}", describe(resp)
    assert resp.content == data[-1000:]

    resp = fresh("GET", url)
    expect(resp, 200)
    assert resp.content == data and resp.headers.get("Content-Length") == str(size)

    missing = digest_of(b"never uploaded")
    resp = fresh("HEAD", f"{registry.url}/v2/{repo}/blobs/{missing}")
    assert resp.status_code == 404, describe(resp)


def test_upload_resumes_after_full_restart(registry):
    repo = "e2e/resume"
    chunk = 100 * 1024
    data = random_bytes(5 * chunk + 77, seed=6)
    digest = digest_of(data)
    pieces = list(chunks_of(data, chunk))

    location = start_upload(registry.url, repo)
    for start, piece in pieces[:3]:
        location = patch_chunk(registry.url, location, start, piece)
    offset = 3 * chunk
    old_workers = registry.worker_pids()

    registry.restart()
    assert not (registry.worker_pids() & old_workers), "restart did not replace the workers"

    status = expect(upload_status(location), 204, "upload status after restart: ")
    assert status.headers.get("Range") == f"0-{offset - 1}", describe(status)
    assert status.headers.get("Location"), describe(status)

    # A chunk that does not continue at the current offset -> 416 + current Range.
    gap = fresh("PATCH", location, data=pieces[4][1], headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{4 * chunk}-{4 * chunk + len(pieces[4][1]) - 1}",
        "Content-Length": str(len(pieces[4][1]))})
    expect(gap, 416, "out-of-order chunk: ")
    assert gap.headers.get("Range") == f"0-{offset - 1}", describe(gap)
    again = expect(upload_status(location), 204, "status after rejected chunk: ")
    assert again.headers.get("Range") == f"0-{offset - 1}", describe(again)

    for start, piece in pieces[3:]:
        location = patch_chunk(registry.url, location, start, piece)
    finish_upload(registry.url, location, digest, repo)
    got = expect(get_blob(registry, repo, digest), 200)
    assert got.content == data

    # The finished session is gone.
    gone = fresh("GET", location, timeout=TIMEOUT)
    assert gone.status_code == 404, describe(gone)
