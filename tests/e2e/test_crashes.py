"""kill -9 in the middle of writes: a worker, or the whole server, dies and the registry recovers.

The real ``registry-ext serve`` (gunicorn, 2 workers, embedded redis-server
with its AOF). Failpoints (registry_ext/failpoints.py) stop a write at an
exact step with SIGKILL, of one worker (gunicorn starts another) or of the
whole process group (master, workers and redis-server; the test restarts
it). After each crash the registry must answer consistently, by itself:
a pull by tag, the enriched listing and the tag history agree; nothing
half-written is visible; ``registry-ext check`` finds nothing; an
interrupted upload resumes from the offset the registry reports.
"""
from __future__ import annotations

import json
import random
import subprocess
import threading
import time

import pytest
import requests

from tests.support.e2e_oci import CONFIG_V1, LAYER_TGZ, MANIFEST_V1, digest_of, fresh, push_blob, random_bytes
from tests.support.e2e_server import RegistryServer, cli_path, descendants

CONVERGE_TIMEOUT = 20.0


class CrashServer(RegistryServer):
    """A server whose failpoints file the test writes to arm one crash at a time."""

    def __init__(self, workdir):
        self.failpoints = workdir / "failpoints.json"
        super().__init__(workdir, env={"REGISTRY_EXT_FAILPOINTS_FILE": str(self.failpoints)})

    def arm(self, point: str, action: str = "kill") -> None:
        self.failpoints.write_text(json.dumps({point: action}))

    def fired(self) -> bool:
        return not self.failpoints.exists()

    def check(self) -> list[dict]:
        """`registry-ext check` against the live server's storage and index."""
        out = subprocess.run([cli_path(), "check", "--data-dir", str(self.data_dir),
                              "--redis-url", f"unix://{self.data_dir}/redis/redis.sock"],
                             capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)["findings"]


@pytest.fixture
def server(tmp_path):
    srv = CrashServer(tmp_path / "server")
    srv.start()
    yield srv
    if srv.proc is not None:
        srv.close()


def image(base: str, repo: str, seed: int) -> tuple[bytes, str]:
    """Push a config and a layer; return the manifest bytes (not pushed) and their digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = random_bytes(2048, seed)
    push_blob(base, repo, config)
    push_blob(base, repo, layer)
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1,
                       "config": {"mediaType": CONFIG_V1, "digest": digest_of(config), "size": len(config)},
                       "layers": [{"mediaType": LAYER_TGZ, "digest": digest_of(layer), "size": len(layer)}]}).encode()
    return body, digest_of(body)


def put_manifest(base: str, repo: str, ref: str, body: bytes) -> int | None:
    """The status, or None when the connection died with the worker."""
    try:
        return fresh("PUT", f"{base}/v2/{repo}/manifests/{ref}", data=body,
                     headers={"Content-Type": MANIFEST_V1}).status_code
    except requests.ConnectionError:
        return None


def views_of_tag(base: str, repo: str, tag: str) -> tuple:
    """(digest a pull resolves, digest the enriched listing shows, last history digest)."""
    pulled = fresh("HEAD", f"{base}/v2/{repo}/manifests/{tag}").headers.get("Docker-Content-Digest")
    listed = {t["name"]: t["digest"] for t in fresh("GET", f"{base}/v2/{repo}/_regext/tags?n=1000").json()["tags"]}
    history = fresh("GET", f"{base}/v2/{repo}/_oci/tag-history/{tag}")
    events = history.json().get("manifests", []) if history.status_code == 200 else []
    live = events and events[0]["annotations"]["org.opencontainers.distribution.tag.event"] != "deleted"
    return pulled, listed.get(tag), events[0]["digest"] if live else None


def converged(server: CrashServer, repo: str, tag: str) -> str | None:
    """Wait until pull, listing and history agree on ``tag`` and the journal is empty; return the digest."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while True:
        try:
            views = views_of_tag(server.url, repo, tag)
        except (requests.RequestException, ValueError):
            views = ("unavailable",)
        left = unfinished_writes(server)
        if len(set(views)) == 1 and not left:
            return views[0]
        assert time.monotonic() < deadline, (f"{repo}:{tag} never converged: {views}, journal {left}\n"
                                             f"{server.diagnostics()}")
        time.sleep(0.2)


def unfinished_writes(server: CrashServer) -> list[str]:
    """Journal entries that name a write (the maintenance thread must replay them). An unreadable
    entry is a worker killed between creating the file and writing it, before any storage change: it
    names nothing, and reconcile drops it once older than TORN_ENTRY_AGE_SECONDS (60 s, longer than
    this test waits)."""
    left = []
    for path in (server.data_dir / "journal").iterdir():
        try:
            json.loads(path.read_bytes())
        except FileNotFoundError:
            continue
        except ValueError:
            continue
        left.append(path.name)
    return left


def wait_workers(server: CrashServer, count: int = 2) -> None:
    deadline = time.monotonic() + 30
    while len(server.worker_pids()) < count:
        assert time.monotonic() < deadline, server.diagnostics()
        time.sleep(0.1)


# The tag a pull resolves after a worker died at each step of moving tag `t` from A to B.
PUSH_STEPS = [("manifest.after-link", "A"), ("manifest.after-tag", "B"),
              ("manifest.before-index", "B"), ("manifest.after-index", "B")]


@pytest.mark.parametrize("point,winner", PUSH_STEPS)
def test_a_worker_killed_mid_tag_move_leaves_one_consistent_answer(server, point, winner):
    base = server.url
    body_a, digest_a = image(base, "app", 1)
    body_b, digest_b = image(base, "app", 2)
    assert put_manifest(base, "app", "t", body_a) == 201
    server.arm(point)
    assert put_manifest(base, "app", "t", body_b) is None  # the worker died mid-request
    assert server.fired()
    wait_workers(server)
    assert converged(server, "app", "t") == {"A": digest_a, "B": digest_b}[winner]
    assert fresh("GET", f"{base}/v2/app/manifests/{digest_b}").content == body_b  # linked at every step
    assert server.check() == []
    assert put_manifest(base, "app", "t", body_b) == 201  # the client's retry
    assert converged(server, "app", "t") == digest_b


def test_the_whole_server_killed_mid_push_restarts_consistent(server):
    base = server.url
    body_a, digest_a = image(base, "team/app", 1)
    body_b, digest_b = image(base, "team/app", 2)
    assert put_manifest(base, "team/app", "stable", body_a) == 201
    server.arm("manifest.before-index", "kill-group")
    assert put_manifest(base, "team/app", "stable", body_b) is None
    server.wait_crashed()
    server.start()  # embedded redis-server restarts from its AOF with a new run_id: a verification runs
    assert converged(server, "team/app", "stable") == digest_b
    assert fresh("GET", f"{server.url}/v2/_catalog").json()["repositories"] == ["team/app"]
    assert server.check() == []


@pytest.mark.parametrize("action", ["kill", "kill-group"])
def test_an_upload_killed_mid_chunk_resumes_from_the_reported_offset(server, action):
    base = server.url
    data = random_bytes(6 << 20, 7)
    loc = base + fresh("POST", f"{base}/v2/app/blobs/uploads/").headers["Location"]
    first = 1 << 20
    resp = fresh("PATCH", loc, data=data[:first], headers={"Content-Range": f"0-{first - 1}"})
    assert resp.status_code == 202
    server.arm("upload.mid-chunk", action)
    with pytest.raises(requests.ConnectionError):
        fresh("PATCH", loc, data=data[first:], headers={"Content-Range": f"{first}-{len(data) - 1}"})
    if action == "kill-group":
        server.wait_crashed()
        server.start()
    status = fresh("GET", loc)
    assert status.status_code == 204
    offset = int(status.headers["Range"].split("-")[1]) + 1
    assert first <= offset < len(data)
    assert fresh("PATCH", loc, data=data[offset:],
                 headers={"Content-Range": f"{offset}-{len(data) - 1}"}).status_code == 202
    done = fresh("PUT", f"{loc}?digest={digest_of(data)}")
    assert done.status_code == 201, done.text
    assert fresh("GET", f"{base}/v2/app/blobs/{digest_of(data)}").content == data


def test_a_blob_killed_between_store_and_link_is_invisible_until_pushed_again(server):
    base = server.url
    data = random_bytes(4096, 3)
    digest = digest_of(data)
    loc = base + fresh("POST", f"{base}/v2/app/blobs/uploads/").headers["Location"]
    server.arm("upload.after-adopt")
    with pytest.raises(requests.ConnectionError):
        fresh("PUT", f"{loc}?digest={digest}", data=data)
    wait_workers(server)
    assert fresh("HEAD", f"{base}/v2/app/blobs/{digest}").status_code == 404
    assert fresh("GET", loc).status_code == 404  # the session is gone with its bytes: start again
    assert push_blob(base, "app", data) == digest
    assert fresh("GET", f"{base}/v2/app/blobs/{digest}").content == data
    assert server.check() == []


def test_a_manifest_delete_killed_half_way_is_finished_or_undone_consistently(server):
    base = server.url
    body, digest = image(base, "app", 4)
    for tag in ("a", "b"):
        assert put_manifest(base, "app", tag, body) == 201
    server.arm("delete.after-untag")
    with pytest.raises(requests.ConnectionError):
        fresh("DELETE", f"{base}/v2/app/manifests/{digest}")
    wait_workers(server)
    assert converged(server, "app", "a") is None
    assert converged(server, "app", "b") is None
    assert fresh("HEAD", f"{base}/v2/app/manifests/{digest}").status_code == 200  # its link outlived the crash
    assert server.check() == []
    assert fresh("DELETE", f"{base}/v2/app/manifests/{digest}").status_code == 202
    assert fresh("HEAD", f"{base}/v2/app/manifests/{digest}").status_code == 404


class Pusher(threading.Thread):
    """Pushes random tags of one repository until stopped; keeps every status and the acknowledged digests."""

    def __init__(self, base: str, repo: str, seeds: range, tags: int):
        super().__init__()
        self.base, self.repo, self.tags = base, repo, tags
        self.bodies = [image(base, repo, seed) for seed in seeds]
        self.acknowledged: dict[str, str] = {}
        self.statuses: set = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        rng = random.Random(5)
        while not self._stop_event.is_set():
            tag = f"v{rng.randrange(self.tags)}"
            body, digest = rng.choice(self.bodies)
            status = put_manifest(self.base, self.repo, tag, body)
            self.statuses.add(status)
            if status == 201:
                self.acknowledged[tag] = digest

    def finish(self) -> None:
        self._stop_event.set()
        self.join(60)

    def assert_nothing_lost(self, server: CrashServer) -> None:
        """Every acknowledged tag resolves alike everywhere, to a pushed manifest that is pullable."""
        assert self.acknowledged
        for tag, digest in self.acknowledged.items():
            # the last acknowledged push of a tag wins unless a later, unacknowledged one landed
            assert converged(server, self.repo, tag) in {d for _b, d in self.bodies}
            assert fresh("GET", f"{self.base}/v2/{self.repo}/manifests/{digest}").status_code == 200
        assert server.check() == []


def test_random_worker_kills_under_pushes_lose_no_acknowledged_push(server):
    """A client pushes tags while workers are SIGKILLed at random moments (no failpoints)."""
    pusher = Pusher(server.url, "chaos", range(100, 106), tags=12)
    pusher.start()
    rng = random.Random(9)
    kills = 0
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.2, 0.6))
            pids = sorted(server.worker_pids())
            if pids:
                subprocess.run(["kill", "-9", str(rng.choice(pids))], check=False)
                kills += 1
    finally:
        pusher.finish()
    wait_workers(server)
    assert kills >= 8
    pusher.assert_nothing_lost(server)


def test_redis_killed_under_pushes_recovers_by_itself(server):
    """SIGKILL of the embedded redis-server while a client pushes: 503s, then everything as stored."""
    pusher = Pusher(server.url, "busy", range(200, 204), tags=8)
    pusher.start()
    try:
        time.sleep(1)
        redis_pids = [pid for pid, cmd in descendants(server.pid).items() if "redis-server" in cmd]
        assert redis_pids, server.diagnostics()
        subprocess.run(["kill", "-9", *map(str, redis_pids)], check=True)
        time.sleep(3)  # the supervisor in the gunicorn master restarts it within a second or two
    finally:
        pusher.finish()
    assert {503, 201} <= pusher.statuses, pusher.statuses  # refused while Redis was down, then served
    pusher.assert_nothing_lost(server)
