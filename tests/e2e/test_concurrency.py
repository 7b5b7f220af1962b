"""Racing clients against the real gunicorn (2 gthread workers): one tag, one blob, one repository, one session.

Every request goes out on a connection of its own (``e2e_oci.fresh``), so
racing requests land on both worker processes; each test proves that from
the access log's ``pid=``. Afterwards every read path (GET by tag,
``tags/list``, ``_regext`` listings, tag history) must agree with the
others and with the files on storage, and ``registry-ext check``, run as
a subprocess with the server's settings, must find nothing.
"""
from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.e2e_oci import (CONFIG_V1, MANIFEST_V1, absolute, canonical_json, describe, digest_of, expect, fresh,
                     push_blob, random_bytes, with_digest)
from tests.support.e2e_server import cli_path

pytestmark = pytest.mark.e2e

CLIENTS = 24          # racing client threads (the server has 2 workers x 16 threads)
RACE_TIMEOUT = 120.0  # functional bound on one race: every request has its own 60 s timeout


def race(count: int, action) -> list:
    """Run ``action(i)`` for i in range(count) in threads released together; return the results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=RACE_TIMEOUT)
        try:
            results[i] = action(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RACE_TIMEOUT)
    assert not any(t.is_alive() for t in threads), f"a racing client did not finish in {RACE_TIMEOUT}s"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def check_finds_nothing(registry) -> None:
    """``registry-ext check`` with the server's storage and Redis settings: exit 0, no findings."""
    cmd = [cli_path(), "check", "--data-dir", str(registry.data_dir), "--redis-url", registry.redis_url,
           "--key-prefix", registry.key_prefix]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"check exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    assert json.loads(out.stdout)["findings"] == [], out.stdout


def assert_both_workers(registry, predicate, count: int, what: str) -> None:
    """The access log holds ``count`` matching requests, served by at least two worker pids."""
    entries = registry.wait_for_entries(predicate, count)
    assert len(entries) >= count, f"{what}: {len(entries)} access-log lines, expected {count}"
    pids = {e.pid for e in entries}
    assert len(pids) >= 2, f"{what}: every request was served by pid(s) {pids}, expected 2 workers"
    assert pids <= registry.worker_pids(), f"{what}: pids {pids} are not the workers {registry.worker_pids()}"


def get_json(url: str, status: int = 200) -> dict:
    return expect(fresh("GET", url), status, f"GET {url}: ").json()


def image(config: bytes, label: str) -> bytes:
    """A distinct OCI image manifest (its label is an annotation) over one config blob."""
    return canonical_json({"schemaVersion": 2, "mediaType": MANIFEST_V1,
                           "config": {"mediaType": CONFIG_V1, "digest": digest_of(config), "size": len(config)},
                           "layers": [], "annotations": {"org.example.label": label}})


def put_manifest(base: str, repo: str, ref: str, body: bytes) -> int:
    """PUT a manifest on its own connection; the status."""
    return fresh("PUT", f"{base}/v2/{repo}/manifests/{ref}", data=body,
                 headers={"Content-Type": MANIFEST_V1}).status_code


# -- one tag, many manifests ------------------------------------------------------------------

def test_clients_pushing_one_tag_leave_one_winner_everywhere(registry):
    repo, tag, base = "race/tag", "3.19.1-alpine", registry.url
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    push_blob(base, repo, config)
    pushed: list[bytes] = []
    for round_ in range(2):  # round 0 races to create the tag, round 1 to move it
        bodies = [image(config, f"round{round_}-client{i}") for i in range(CLIENTS)]
        statuses = race(CLIENTS, lambda i, bodies=bodies: put_manifest(base, repo, tag, bodies[i]))
        assert statuses == [201] * CLIENTS, statuses
        pushed += bodies
        winner = assert_one_winner(base, repo, tag, bodies, pushed)
        assert winner in bodies, "the tag does not point at a manifest of the last race"
    assert_both_workers(registry, lambda e: e.method == "PUT" and e.path == f"/v2/{repo}/manifests/{tag}",
                        2 * CLIENTS, "manifest PUTs")
    check_finds_nothing(registry)


def assert_one_winner(base: str, repo: str, tag: str, bodies: list[bytes], pushed: list[bytes]) -> bytes:
    """Every read path names the same manifest; the history holds one event per accepted push."""
    got = expect(fresh("GET", f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V1}), 200)
    winner, digest = got.content, got.headers["Docker-Content-Digest"]
    assert digest == digest_of(winner) and winner in pushed, describe(got)
    head = expect(fresh("HEAD", f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V1}), 200)
    assert head.headers["Docker-Content-Digest"] == digest, describe(head)
    assert get_json(f"{base}/v2/{repo}/tags/list")["tags"] == [tag]
    listed = get_json(f"{base}/v2/{repo}/_regext/tags?sort=semver&order=desc")["tags"]
    assert [(t["name"], t["digest"]) for t in listed] == [(tag, digest)], listed
    for body in bodies:
        other = digest_of(body)
        tags = get_json(f"{base}/v2/{repo}/_regext/digests/{other}/tags")["tags"]
        assert tags == ([tag] if other == digest else []), (other, tags)
    history = get_json(f"{base}/v2/{repo}/_oci/tag-history/{tag}?n=1000")["manifests"]
    assert len(history) == len(pushed), f"{len(history)} history events for {len(pushed)} accepted pushes"
    assert history[0]["digest"] == digest, "the newest history event is not the manifest the tag names"
    assert sorted(h["digest"] for h in history) == sorted(map(digest_of, pushed))
    return winner


# -- one blob, many uploads -------------------------------------------------------------------

BLOB_SIZE = 768 * 1024
CHUNKS = 4


def upload_monolithic(base: str, repo: str, data: bytes) -> list[int]:
    resp = fresh("POST", f"{base}/v2/{repo}/blobs/uploads/?digest={digest_of(data)}", data=data,
                 headers={"Content-Type": "application/octet-stream"})
    return [resp.status_code]


def upload_chunked(base: str, repo: str, data: bytes, sessions: list[str]) -> list[int]:
    """POST, PATCH the first chunks, PUT the last one with ?digest=; the statuses in order."""
    resp = fresh("POST", f"{base}/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    statuses = [resp.status_code]
    location = absolute(base, resp.headers.get("Location", ""))
    sessions.append(location)
    size = len(data) // CHUNKS
    for start in range(0, size * (CHUNKS - 1), size):
        resp = fresh("PATCH", location, data=data[start:start + size],
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Range": f"{start}-{start + size - 1}"})
        statuses.append(resp.status_code)
        location = absolute(base, resp.headers.get("Location", location))
    start = size * (CHUNKS - 1)
    resp = fresh("PUT", with_digest(location, digest_of(data)), data=data[start:],
                 headers={"Content-Type": "application/octet-stream",
                          "Content-Range": f"{start}-{len(data) - 1}"})
    return statuses + [resp.status_code]


def test_clients_uploading_one_blob_store_it_once(registry):
    repo, base = "race/blob", registry.url
    data = random_bytes(BLOB_SIZE, seed=7)
    digest = digest_of(data)
    sessions: list[str] = []

    def upload(i: int) -> list[int]:
        if i % 2:
            return upload_chunked(base, repo, data, sessions)
        return upload_monolithic(base, repo, data)

    results = race(CLIENTS, upload)
    for i, statuses in enumerate(results):
        wanted = [202] * CHUNKS + [201] if i % 2 else [201]
        assert statuses == wanted, f"client {i}: {statuses}, expected {wanted}"
    got = expect(fresh("GET", f"{base}/v2/{repo}/blobs/{digest}"), 200)
    assert digest_of(got.content) == digest and got.headers["Docker-Content-Digest"] == digest
    data_dir = Path(registry.data_dir)
    stored = [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]
    assert [p.relative_to(data_dir).as_posix() for p in stored] == [
        f"blobs/sha256/{digest[7:9]}/{digest[7:]}"], stored
    assert digest_of(stored[0].read_bytes()) == digest
    assert list((data_dir / "tmp").glob("*")) == [], "temp files left behind"
    assert list((data_dir / "uploads").glob("*")) == [], "upload sessions left behind"
    for location in sessions:
        expect(fresh("GET", location), 404, "finished session still answers: ")
    assert_both_workers(registry, lambda e: e.path.startswith(f"/v2/{repo}/blobs/uploads/"),
                        CLIENTS // 2 + CLIENTS // 2 * (CHUNKS + 1), "upload requests")
    check_finds_nothing(registry)


# -- tag moves, tag deletes and manifest deletes on one repository ----------------------------

TAGS = ("1.25", "1.25.4", "1.25.4-alpine", "latest", "stable", "mainline")
MANIFESTS = 6
OPS_PER_CLIENT = 16


def churn(base: str, repo: str, bodies: list[bytes], seed: int) -> list[str]:
    """Random tag moves, tag deletes, manifest deletes and re-pushes; the unexpected answers."""
    rnd, wrong = random.Random(seed), []
    for _ in range(OPS_PER_CLIENT):
        body, tag, roll = rnd.choice(bodies), rnd.choice(TAGS), rnd.random()
        if roll < 0.45:
            method, url, ok = "PUT", f"{base}/v2/{repo}/manifests/{tag}", (201,)
        elif roll < 0.60:
            method, url, ok = "PUT", f"{base}/v2/{repo}/manifests/{digest_of(body)}", (201,)
        elif roll < 0.80:
            method, url, ok = "DELETE", f"{base}/v2/{repo}/manifests/{tag}", (202, 404)
        elif roll < 0.95:
            method, url, ok = "DELETE", f"{base}/v2/{repo}/manifests/{digest_of(body)}", (202, 404)
        else:
            method, url, ok = "GET", f"{base}/v2/{repo}/manifests/{tag}", (200, 404)
        data = body if method == "PUT" else None
        resp = fresh(method, url, data=data, headers={"Content-Type": MANIFEST_V1} if data else {})
        if resp.status_code not in ok:
            wrong.append(describe(resp))
    return wrong


def test_tag_moves_and_deletes_racing_on_one_repository_keep_storage_and_index_agreeing(registry):
    repo, base = "race/churn", registry.url
    config = b'{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    push_blob(base, repo, config)
    bodies = [image(config, f"build-{i}") for i in range(MANIFESTS)]
    for body in bodies:
        assert put_manifest(base, repo, digest_of(body), body) == 201
    wrong = race(CLIENTS, lambda i: churn(base, repo, bodies, seed=i))
    assert [w for per_client in wrong for w in per_client] == []
    assert_both_workers(registry, lambda e: e.method in ("PUT", "DELETE")
                        and e.path.startswith(f"/v2/{repo}/manifests/"), CLIENTS, "tag and manifest changes")
    assert_consistent_repository(base, repo, bodies)
    check_finds_nothing(registry)


def assert_consistent_repository(base: str, repo: str, bodies: list[bytes]) -> None:
    """Every tag resolves to a present manifest; every listing and reverse lookup agrees."""
    tags = get_json(f"{base}/v2/{repo}/tags/list").get("tags") or []
    pointing: dict[str, str] = {}
    for tag in tags:
        got = expect(fresh("GET", f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V1}), 200,
                     f"listed tag {tag}: ")
        pointing[tag] = got.headers["Docker-Content-Digest"]
        assert got.content in bodies, describe(got)
    listed = get_json(f"{base}/v2/{repo}/_regext/tags?n=100")["tags"]
    assert {t["name"]: t["digest"] for t in listed} == pointing
    for body in bodies:
        digest = digest_of(body)
        resp = fresh("GET", f"{base}/v2/{repo}/manifests/{digest}", headers={"Accept": MANIFEST_V1})
        expected = sorted(t for t, d in pointing.items() if d == digest)
        if resp.status_code == 404:
            assert expected == [], f"tags {expected} point at the deleted manifest {digest}"
            continue
        expect(resp, 200)
        by_digest = get_json(f"{base}/v2/{repo}/_regext/digests/{digest}/tags")["tags"]
        assert sorted(by_digest) == expected, (digest, by_digest, expected)


# -- requests racing the PUT that finishes their session --------------------------------------

RACE_ROUNDS = 8
RACE_BLOB = 24 * 1024 * 1024  # the PUT hashes and fsyncs this much before it moves the file
# (PUT, racer) statuses: the PUT first leaves no session to PATCH or cancel; a PATCH first makes
# the digest wrong (the session is then dropped); a cancel first leaves no session to finish.
FINISH_RACE_OUTCOMES = {"PATCH": {(201, 404), (400, 202)}, "DELETE": {(201, 404), (404, 204)}}


def finish_with_racer(base: str, repo: str, data: bytes, racer: str, delay: float) -> tuple[int, int]:
    """PATCH the data, then PUT ?digest= and, ``delay`` s later, a PATCH (or DELETE) of the session."""
    location = absolute(base, expect(fresh("POST", f"{base}/v2/{repo}/blobs/uploads/",
                                           headers={"Content-Length": "0"}), 202).headers["Location"])
    location = absolute(base, expect(fresh("PATCH", location, data=data, headers={
        "Content-Type": "application/octet-stream", "Content-Range": f"0-{len(data) - 1}"}), 202).headers["Location"])
    extra = b"bytes after the end"

    def request(i: int) -> int:
        if i == 0:
            return fresh("PUT", with_digest(location, digest_of(data)), headers={"Content-Length": "0"}).status_code
        time.sleep(delay)
        if racer == "DELETE":
            return fresh("DELETE", location).status_code
        return fresh("PATCH", location, data=extra, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{len(data)}-{len(data) + len(extra) - 1}"}).status_code

    put, other = race(2, request)
    return put, other


def test_a_patch_or_cancel_racing_the_finishing_put_never_changes_the_stored_blob(registry):
    """A late PATCH used to append to the data file after the PUT had hashed it, so the blob stored
    under the digest held other bytes; a late cancel made the PUT fail with a 500. Timing decides
    whether a round hits that window; tests/api/test_upload_races.py forces it."""
    repo, base = "race/finish", registry.url
    data = random_bytes(RACE_BLOB, seed=11)
    digest = digest_of(data)
    path = Path(registry.data_dir) / "blobs" / "sha256" / digest[7:9] / digest[7:]
    for round_ in range(RACE_ROUNDS):
        racer = "DELETE" if round_ % 4 == 3 else "PATCH"
        put, other = finish_with_racer(base, repo, data, racer, delay=0.01 * round_)
        assert (put, other) in FINISH_RACE_OUTCOMES[racer], f"round {round_}: PUT {put}, {racer} {other}"
        if path.exists():
            assert digest_of(path.read_bytes()) == digest, f"round {round_}: the stored blob changed"
        if put == 201:
            assert digest_of(expect(fresh("GET", f"{base}/v2/{repo}/blobs/{digest}"), 200).content) == digest
    data_dir = Path(registry.data_dir)
    assert list((data_dir / "uploads").glob("*")) == [] and list((data_dir / "tmp").glob("*")) == []
    assert_both_workers(registry, lambda e: e.path.startswith(f"/v2/{repo}/blobs/uploads/"),
                        RACE_ROUNDS * 4, "upload requests")
    check_finds_nothing(registry)
