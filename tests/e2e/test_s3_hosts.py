"""Several registry hosts on one S3 bucket (Ceph RGW) and one Redis: what a client sees is one registry.

Each host is a real ``registry-ext serve`` with its own gunicorn master and local scratch folder. Real
clients (skopeo) push and pull through the shipped multi-host nginx site, and through one host then the
other; an upload's chunks alternate between the hosts; a host SIGKILLed in the middle of writes leaves
nothing lost and nothing half-visible, and the survivor serves everything that was acknowledged; garbage
collection running while both hosts write loses nothing acknowledged.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.support.e2e_oci import (MANIFEST_V1, OciLayout, digest_of, expect, fresh, push_blob, random_bytes,
                                   read_layout)
from tests.support.e2e_server import cli_path
from tests.support.e2e_skopeo import Skopeo
from tests.support.s3_hosts import Front, s3_hosts

pytestmark = pytest.mark.e2e


@pytest.fixture
def hosts(tmp_path, s3_server, redis_server):
    servers = s3_hosts(tmp_path, s3_server, redis_server)
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close()


def push_manifest(url: str, repo: str, ref: str, layer: bytes, note: str = "") -> tuple[str, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": note}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_V1,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": push_blob(url, repo, config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": push_blob(url, repo, layer),
                    "size": len(layer)}],
    }).encode()
    resp = requests.put(f"{url}/v2/{repo}/manifests/{ref}", data=manifest,
                        headers={"Content-Type": MANIFEST_V1}, timeout=30)
    assert resp.status_code == 201, resp.text
    return digest_of(manifest), manifest


def test_skopeo_through_the_shipped_nginx_site_in_front_of_both_hosts(hosts, tmp_path):
    """deploy/multi-host/nginx.conf (real nginx) balancing over both hosts: skopeo pushes and pulls an
    image through it; the requests land on both hosts."""
    front = Front(tmp_path / "nginx", hosts)
    try:
        src, dst = tmp_path / "src", tmp_path / "dst"
        layout = OciLayout(src)
        image = layout.add_image(arch="arm64", labels={"suite": "s3-front"}, layers=[
            {"bin/tool": random_bytes(6_000_000, seed=5)}, {"etc/issue": b"behind nginx\n"}])
        layout.tag(image["descriptor"], "v2")
        skopeo = Skopeo(tmp_path / "home", front)
        skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{src}:v2",
                   f"docker://{front.host}/s3/front:v2")
        skopeo.run("copy", "--src-tls-verify=false", f"docker://{front.host}/s3/front:v2", f"oci:{dst}:v2")
    finally:
        front.close()
    assert read_layout(dst, "v2")["digest"] == image["descriptor"]["digest"]
    served = [len([e for e in host.access_entries() if "/s3/front/" in e.path]) for host in hosts]
    assert all(served), served  # nginx spread the requests over both hosts


def test_skopeo_pushes_through_one_host_and_pulls_through_the_other(hosts, tmp_path):
    a, b = hosts
    src, dst = tmp_path / "src", tmp_path / "dst"
    layout = OciLayout(src)
    image = layout.add_image(arch="amd64", labels={"suite": "s3-hosts"}, layers=[
        {"bin/tool": random_bytes(7_000_000, seed=3)},  # > 5 MiB: a multipart object
        {"etc/motd": b"hello from S3\n"},
    ])
    layout.tag(image["descriptor"], "v1")
    Skopeo(tmp_path / "home-a", a).run("copy", "--preserve-digests", "--dest-tls-verify=false",
                                       f"oci:{src}:v1", f"docker://{a.host}/s3/app:v1")
    Skopeo(tmp_path / "home-b", b).run("copy", "--src-tls-verify=false", f"docker://{b.host}/s3/app:v1",
                                       f"oci:{dst}:v1")
    assert read_layout(dst, "v1")["digest"] == image["descriptor"]["digest"]
    resp = expect(fresh("GET", f"{b.url}/v2/s3/app/manifests/v1", headers={"Accept": MANIFEST_V1}), 200)
    assert resp.content == image["manifest"]
    assert expect(fresh("GET", f"{b.url}/v2/s3/app/tags/list"), 200).json()["tags"] == ["v1"]
    assert "s3/app" in expect(fresh("GET", f"{a.url}/v2/_catalog"), 200).json()["repositories"]


def test_an_upload_whose_chunks_alternate_between_hosts(hosts):
    """Chunks of one session sent to A, B, A, then finished on B: the session lives in the bucket, its
    lock in Redis, its running hash in hash.json."""
    a, b = hosts
    chunks = [os.urandom(6 * 1024 * 1024), os.urandom(1_000_000), os.urandom(5 * 1024 * 1024)]
    last = os.urandom(300_000)
    resp = requests.post(f"{a.url}/v2/s3/chunks/blobs/uploads/", timeout=30)
    assert resp.status_code == 202, resp.text
    path, offset = resp.headers["Location"], 0
    for n, chunk in enumerate(chunks):
        host = (a, b)[n % 2]
        resp = requests.patch(f"{host.url}{path}", data=chunk, timeout=60, headers={
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Type": "application/octet-stream"})
        assert resp.status_code == 202, resp.text
        offset += len(chunk)
        status = requests.get(f"{(b, a)[n % 2].url}{path}", timeout=30)  # the other host sees it at once
        assert status.status_code == 204 and status.headers["Range"] == f"0-{offset - 1}"
    whole = b"".join(chunks) + last
    resp = requests.put(f"{b.url}{path}?digest={digest_of(whole)}", data=last, timeout=60,
                        headers={"Content-Range": f"{offset}-{len(whole) - 1}",
                                 "Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.text
    got = requests.get(f"{a.url}/v2/s3/chunks/blobs/{digest_of(whole)}", timeout=60)
    assert got.status_code == 200 and got.content == whole
    assert requests.get(f"{a.url}{path}", timeout=30).status_code == 404  # the session is gone everywhere


def test_concurrent_tag_moves_through_both_hosts_end_in_one_consistent_state(hosts):
    """Pushes of one tag through two hosts serialise on the repository's lease: the history has every
    move, the tag points at the last one, and both hosts agree."""
    a, b = hosts
    layer = b"layer of the race"

    def push(n: int) -> str:
        return push_manifest((a, b)[n % 2].url, "s3/race", "latest", layer, note=str(n))[0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pushed = set(pool.map(push, range(16)))
    assert len(pushed) == 16
    heads = {requests.head(f"{h.url}/v2/s3/race/manifests/latest", headers={"Accept": MANIFEST_V1},
                           timeout=30).headers["Docker-Content-Digest"] for h in hosts}
    assert len(heads) == 1 and heads <= pushed
    history = expect(fresh("GET", f"{a.url}/v2/s3/race/_oci/tag-history/latest?n=100"), 200).json()
    events = history["manifests"]
    assert len(events) == 16 and {e["digest"] for e in events} == pushed
    assert events[0]["digest"] == heads.pop()  # newest first: the tag's current target


def test_a_host_killed_mid_push_loses_nothing_acknowledged(hosts):
    """SIGKILL one host while pushes go through both: every push that got 201 is served by the
    survivor, byte for byte; a push cut by the kill is either whole or absent."""
    a, b = hosts
    acknowledged: dict[str, bytes] = {}

    def push(n: int) -> None:
        host = (a, b)[n % 2]
        try:
            d, body = push_manifest(host.url, f"s3/kill{n % 3}", f"t{n}", os.urandom(200_000), note=str(n))
        except (requests.RequestException, AssertionError):
            return
        acknowledged[f"s3/kill{n % 3}:t{n}"] = body

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(push, n) for n in range(60)]
        futures[10].result()
        a._kill_group()  # the whole host: gunicorn master and workers
        for future in futures:
            future.result()
    assert len(acknowledged) >= 20
    for ref, body in acknowledged.items():
        repo, tag = ref.split(":")
        resp = requests.get(f"{b.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V1}, timeout=30)
        assert resp.status_code == 200 and resp.content == body, ref
        layer = json.loads(body)["layers"][0]
        blob = requests.get(f"{b.url}/v2/{repo}/blobs/{layer['digest']}", timeout=30)
        assert blob.status_code == 200 and digest_of(blob.content) == layer["digest"]
    for n in range(3):  # every listed tag reads back
        tags = set(expect(fresh("GET", f"{b.url}/v2/s3/kill{n}/tags/list"), 200).json()["tags"])
        for tag in tags:
            assert requests.head(f"{b.url}/v2/s3/kill{n}/manifests/{tag}", headers={"Accept": MANIFEST_V1},
                                 timeout=30).status_code == 200
    assert_check_clean(b)


def assert_check_clean(host, timeout: float = 60.0) -> None:
    """``registry-ext check`` finds nothing once the survivors replayed the dead host's journal (each
    process looks at it every 5 s on S3; a dead host's leases expire after 30 s)."""
    cmd = [cli_path(), "check", "--redis-url", host.redis_url, "--key-prefix", host.key_prefix,
           "--data-dir", str(host.data_dir)]
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(os.environ, **host.env))
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert json.loads(proc.stdout)["findings"] == []


# -- garbage collection while both hosts write ----------------------------------------------------------

BASE = b"a base layer every image shares; gc keeps deleting it while nothing references it\n" * 500


def upload(url: str, repo: str, data: bytes, source: str | None = None) -> int:
    """A mount from ``source`` (201, or 202 when the blob cannot be mounted: then uploaded in the session)
    or a monolithic upload; the status of the request that finished it."""
    digest = digest_of(data)
    if source is not None:
        resp = requests.post(f"{url}/v2/{repo}/blobs/uploads/?mount={digest}&from={source}", timeout=60)
        if resp.status_code != 202:
            return resp.status_code
        resp = requests.put(f"{url}{resp.headers['Location']}", params={"digest": digest}, data=data, timeout=60,
                            headers={"Content-Type": "application/octet-stream"})
        return resp.status_code
    resp = requests.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data, timeout=60,
                         headers={"Content-Type": "application/octet-stream"})
    return resp.status_code


def test_gc_running_while_both_hosts_push_mount_and_delete_loses_nothing_acknowledged(tmp_path, s3_server,
                                                                                     redis_server):
    """`registry-ext gc --grace-period 0` runs again and again (on S3: docs/gc.md#on-s3) while clients of
    both hosts push images sharing a base layer (uploaded again, or mounted from another repository:
    bytes gc may be deleting at that moment) and delete half of them. A push may be refused
    (MANIFEST_BLOB_UNKNOWN: gc took a blob it had uploaded, not referenced yet), a mount may answer 202;
    but every manifest acknowledged and not deleted is served whole by both hosts, after the last run
    too, and `check` finds nothing."""
    a, b = servers = s3_hosts(tmp_path, s3_server, redis_server)
    for server in servers:
        server.start()
    try:
        kept: dict[str, tuple[bytes, list[str]]] = {}  # repo@digest -> body, blob digests
        outcomes: dict[str, int] = {}
        done = threading.Event()

        def client(n: int) -> None:
            url, repo = (a, b)[n % 2].url, f"gc/app{n % 3}"
            for rnd in range(8):
                own = os.urandom(30_000)
                config = json.dumps({"architecture": "amd64", "os": "linux", "note": f"{n}-{rnd}"}).encode()
                source = f"gc/app{(n + 1) % 3}" if rnd % 2 else None
                statuses = [upload(url, repo, BASE, source), upload(url, repo, own), upload(url, repo, config)]
                assert statuses == [201, 201, 201], statuses
                body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                    "size": len(config)}, "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(d), "size": len(d)}
                    for d in (BASE, own)]}).encode()
                resp = requests.put(f"{url}/v2/{repo}/manifests/{digest_of(body)}", data=body, timeout=60,
                                    headers={"Content-Type": MANIFEST_V1})
                key = "refused" if resp.status_code == 400 else str(resp.status_code)
                outcomes[key] = outcomes.get(key, 0) + 1
                if resp.status_code == 400:
                    assert resp.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", resp.text
                    continue
                assert resp.status_code == 201, resp.text
                if rnd % 2:
                    kept[f"{repo}@{digest_of(body)}"] = (body, [digest_of(d) for d in (config, BASE, own)])
                else:
                    assert requests.delete(f"{url}/v2/{repo}/manifests/{digest_of(body)}",
                                           timeout=60).status_code == 202

        config = tmp_path / "registry.toml"
        command = [sys.executable, "-m", "registry_ext.cli", "gc", "--config", str(config), "--redis-url",
                   redis_server, "--key-prefix", a.key_prefix, "--grace-period", "0"]
        reports: list[dict] = []

        def collect() -> None:
            while not done.is_set():
                run = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
                assert run.returncode == 0, run.stderr
                reports.append(json.loads(run.stdout))

        collector = threading.Thread(target=collect)
        collector.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                for future in [pool.submit(client, n) for n in range(6)]:
                    future.result()
        finally:
            done.set()
            collector.join(300)

        def assert_kept_whole() -> None:
            for ref, (body, blobs) in kept.items():
                repo, digest = ref.split("@")
                for host in servers:
                    resp = requests.get(f"{host.url}/v2/{repo}/manifests/{digest}", headers={"Accept": MANIFEST_V1},
                                        timeout=30)
                    assert resp.status_code == 200 and resp.content == body, ref
                    for blob in blobs:
                        got = requests.get(f"{host.url}/v2/{repo}/blobs/{blob}", timeout=60)
                        assert got.status_code == 200 and digest_of(got.content) == blob, (ref, blob)

        assert len(reports) >= 2 and sum(r["blobs_deleted"] for r in reports) > 0, reports  # gc did delete
        assert outcomes.get("201", 0) >= 12 and kept, outcomes
        assert_kept_whole()
        last = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert last.returncode == 0, last.stderr
        assert_kept_whole()
        checked = subprocess.run([*command[:3], "check", *command[4:10]], capture_output=True, text=True,
                                 timeout=120, cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        for server in servers:
            server.close()
