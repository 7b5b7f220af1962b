"""The S3 server restarted in the middle of an upload: while it is down, requests answer 503 with
Retry-After and change nothing; once it is back, the same session goes on and finishes with the right
bytes. Its own RGW (not the session's, which other tests use), whose ``radosgw`` daemon is killed and
started again on the same cluster, so the bucket and the session's objects survive the restart."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
import uuid

import pytest
import requests

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support import s3server
from tests.support.flask_client import BufferedClient

OCTET = {"Content-Type": "application/octet-stream"}


class Gateway:
    """The ``radosgw`` process of a private RGW: ``stop`` kills it, ``start`` runs it again as it ran."""

    def __init__(self, server):
        self.server = server
        pid = int(next(line.split()[0] for line in (server.dir / "run" / "daemons.txt").read_text().splitlines()
                       if line.split()[1] == "rgw"))
        self.pid = pid
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            self.argv = cmdline.read().rstrip(b"\0").split(b"\0")
        self.proc = None

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{self.pid}") and time.monotonic() < deadline:
            time.sleep(0.05)

    def start(self) -> None:
        self.proc = subprocess.Popen([a.decode() for a in self.argv], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.server.endpoint, timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise AssertionError("radosgw did not come back") from None
                time.sleep(0.1)


@pytest.fixture
def private_s3(tmp_path):
    server = s3server.start(tmp_path / "rgw")
    gateway = Gateway(server)
    try:
        yield server, gateway
    finally:
        if gateway.proc is not None:
            gateway.proc.kill()
            gateway.proc.wait(10)
        s3server.stop(tmp_path / "rgw")


def test_an_upload_survives_the_s3_server_restarting(private_s3, tmp_path, redis_server):
    server, gateway = private_s3
    storage = server.storage_settings(server.new_bucket("restart"), "r", max_attempts=2, connect_timeout=2.0)
    settings = load_settings(data={"storage": dict(storage, root=str(tmp_path / "scratch")),
                                   "redis": {"url": redis_server, "key_prefix": f"rs{uuid.uuid4().hex[:8]}"}},
                             environ={})
    app = create_app(settings)
    app.test_client_class = BufferedClient
    client = app.test_client()
    first, second = os.urandom(3_000_000), os.urandom(2_000_000)
    location = client.post("/v2/r/app/blobs/uploads/").headers["Location"]
    resp = client.patch(location, data=first, headers=dict(OCTET, **{"Content-Range": f"0-{len(first) - 1}"}))
    assert resp.status_code == 202

    gateway.stop()
    chunk = {"Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"}
    down = client.patch(location, data=second, headers=dict(OCTET, **chunk))
    assert down.status_code == 503 and down.headers["Retry-After"] == "5", down.get_data()
    assert down.get_json()["errors"][0]["message"] == "the object store is unavailable; retry later"

    gateway.start()
    assert client.get(location).headers["Range"] == f"0-{len(first) - 1}"  # the failed chunk left nothing
    assert client.patch(location, data=second, headers=dict(OCTET, **chunk)).status_code == 202
    whole = first + second
    digest = "sha256:" + hashlib.sha256(whole).hexdigest()
    assert client.put(f"{location}?digest={digest}", headers=OCTET).status_code == 201
    assert client.get(f"/v2/r/app/blobs/{digest}").get_data() == whole
