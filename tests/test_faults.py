"""Failure paths that need more than one request: Redis down, races, aborted bodies."""
import io
import json
import shutil
import subprocess
import threading
import time

import pytest

from registry_ext import create_app
from registry_ext.config import load_settings
from tests.support.servers import start_redis
from tests.support.oci_client import OCI_MANIFEST, sha256_digest as digest


def image_doc(config_desc, label):
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [],
            "annotations": {"label": label}}


def test_redis_down_gives_503_envelope_and_recovers(tmp_path):
    proc, url = start_redis(tmp_path)
    settings = load_settings(data={"storage": {"root": str(tmp_path / "d")}, "redis": {"url": url}}, environ={})
    client = create_app(settings).test_client()
    assert client.post("/v2/r/blobs/uploads/?digest=" + digest(b"x"), data=b"x").status_code == 201
    proc.terminate()
    proc.wait(10)
    resp = client.get("/v2/r/tags/list")
    assert resp.status_code == 503
    assert resp.json["errors"][0]["code"] == "UNSUPPORTED"
    assert resp.headers["Retry-After"] == "1"
    port = url.rsplit(":", 1)[1].split("/")[0]
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", port, "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if client.get("/v2/r/tags/list").status_code != 503:
                break
            time.sleep(0.05)
        assert client.get("/v2/_catalog").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_concurrent_pushes_of_one_tag_leave_storage_and_index_agreeing(app):
    client = app.test_client()
    config = b"{}"
    client.post("/v2/race/blobs/uploads/?digest=" + digest(config), data=config)
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": 2}
    bodies = [json.dumps(image_doc(config_desc, str(i))).encode() for i in range(16)]
    errors = []

    def push(body):
        resp = app.test_client().put("/v2/race/manifests/hot", data=body, headers={"Content-Type": OCI_MANIFEST})
        if resp.status_code != 201:
            errors.append(resp.status_code)

    threads = [threading.Thread(target=push, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    served = client.get("/v2/race/manifests/hot")
    reg = app.extensions["registry"]
    assert served.data in bodies
    assert reg.index.read.tag_digest("race", "hot") == served.headers["Docker-Content-Digest"]
    owners = [d for d in map(digest, bodies) if "hot" in reg.index.read.digest_tags("race", d)]
    assert owners == [served.headers["Docker-Content-Digest"]]
    history = reg.storage.repos.history("race", "hot")
    assert len(history) == 16 and history[-1].digest == owners[0]


class Exploding(io.RawIOBase):
    """A request body that fails half-way, like a client that disconnects."""

    def __init__(self, good: bytes):
        self.good = io.BytesIO(good)

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.good.read(len(buffer))
        if not data:
            raise OSError("client went away")
        buffer[:len(data)] = data
        return len(data)


def test_aborted_chunk_is_rolled_back(app):
    reg = app.extensions["registry"]
    info = reg.uploads.start("r")
    reg.uploads.append("r", info.id, io.BytesIO(b"abc"), 0, 3)
    with pytest.raises(OSError):
        reg.uploads.append("r", info.id, io.BufferedReader(Exploding(b"defgh")), 3, None)
    assert reg.uploads.status("r", info.id).size == 3


def test_failed_finish_leaves_nothing_visible(client):
    start = client.post("/v2/r/blobs/uploads/")
    location = start.headers["Location"]
    resp = client.put(location + "?digest=" + digest(b"other"), data=b"payload")
    assert resp.status_code == 400 and resp.json["errors"][0]["code"] == "DIGEST_INVALID"
    assert client.head("/v2/r/blobs/" + digest(b"payload")).status_code == 404
    assert client.head("/v2/r/blobs/" + digest(b"other")).status_code == 404
    assert client.get(location).status_code == 404
