"""Real clients pull through the mirror from two upstreams holding different images under one name (#13).

Two Debian ``docker-registry`` instances stand for the hosts ``registry-a.example`` and
``registry-b.example``; each holds its own image as ``library/app:1``. Our mirror (``registry-ext serve``,
2 workers) names both. containerd is the ``ns`` client (``hosts.toml`` mirrors: it asks for
``/v2/library/app/manifests/1?ns=registry-a.example``); skopeo is the path-prefix client (a
``registries.conf`` mirror at ``<mirror>/registry-a.example``: ``/v2/registry-a.example/library/app/...``).
oras pulls a file artifact by path prefix too. The fictitious hosts do not resolve, so a client falling
back past the mirror fails: every success here went through the mirror.
"""
from __future__ import annotations

import json

import pytest
import requests
from oras.client import OrasClient

from tests.support.e2e_clients import Containerd
from tests.support.e2e_oci import read_layout
from tests.support.e2e_proxy import Upstream, make_image, mirror_toml, push_image, start_mirror
from tests.support.s3_hosts import s3_config
from tests.support.e2e_skopeo import Skopeo

pytestmark = pytest.mark.e2e

HOSTS = {"a": "registry-a.example", "b": "registry-b.example"}
NAME = "library/app"


@pytest.fixture(params=["filesystem", "s3"])
def world(request, tmp_path, redis_server):
    """Both upstreams, each with its own ``library/app:1``, and the mirror in front of them (its storage
    on the filesystem, or in a new bucket of a real S3 server). The upstream ``a`` keeps tags fresh for a
    minute; ``b`` asks upstream on every by-tag pull (TTL 0)."""
    upstreams = {name: Upstream(tmp_path, name).start() for name in HOSTS}
    images = {name: make_image(f"image-from-{name}", tar_layers=2) for name in HOSTS}
    mirror = None
    try:
        for name, upstream in upstreams.items():
            push_image(upstream.url, NAME, "1", images[name])
        toml = mirror_toml({name: {"hosts": [host], "urls": [upstreams[name].url],
                                   "manifest_ttl": 60 if name == "a" else 0}
                            for name, host in HOSTS.items()})
        if request.param == "s3":
            server = request.getfixturevalue("s3_server")
            toml = s3_config(tmp_path / "s3.toml", server, server.new_bucket("clients")).read_text() + toml
        mirror = start_mirror(tmp_path / "mirror", redis_server, toml)
        yield mirror, upstreams, images
    finally:
        if mirror is not None:
            mirror.close()
        for upstream in upstreams.values():
            upstream.stop()


def hosts_dir(path, mirror) -> str:
    """containerd hosts.toml files sending both upstream hosts to the mirror (plain HTTP)."""
    for host in HOSTS.values():
        folder = path / host
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts.toml").write_text(
            f'server = "https://{host}"\n\n[host."http://{mirror.host}"]\n  capabilities = ["pull", "resolve"]\n')
    return str(path)


def registries_conf(path, mirror) -> str:
    """registries.conf with a mirror at ``<mirror>/<upstream host>`` for both hosts."""
    entries = [f'[[registry]]\nprefix = "{host}"\nlocation = "{host}"\n\n'
               f'[[registry.mirror]]\nlocation = "{mirror.host}/{host}"\ninsecure = true\n'
               for host in HOSTS.values()]
    path.write_text('unqualified-search-registries = []\n\n' + "\n".join(entries))
    return str(path)


def containerd_content(ctd: Containerd) -> set[str]:
    return set(ctd.run("content", "ls", "-q").stdout.split())


def ctr_fetch(ctd: Containerd, hosts: str, name: str) -> None:
    ctd.run("content", "fetch", "--hosts-dir", hosts, f"{HOSTS[name]}/{NAME}:1", timeout=60)


def skopeo_copy(skopeo: Skopeo, conf: str, name: str, dest) -> dict:
    skopeo.run("--registries-conf", conf, "copy", f"docker://{HOSTS[name]}/{NAME}:1", f"oci:{dest}:1")
    entry = read_layout(dest, "1")
    manifest = json.loads((dest / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes())
    return {"digest": entry["digest"], "layers": [layer["digest"] for layer in manifest["layers"]],
            "config": manifest["config"]["digest"]}


def test_containerd_ns_gets_each_upstreams_own_image(world, tmp_path):
    mirror, _, images = world
    hosts = hosts_dir(tmp_path / "hosts", mirror)
    ctd = Containerd(tmp_path / "containerd")
    try:
        ctr_fetch(ctd, hosts, "a")
        after_a = containerd_content(ctd)
        assert set(images["a"].blobs) | {images["a"].digest} == after_a, mirror.diagnostics()
        ctr_fetch(ctd, hosts, "b")
        after_b = containerd_content(ctd) - after_a
        assert set(images["b"].blobs) | {images["b"].digest} == after_b, mirror.diagnostics()
    finally:
        ctd.stop()
    asked = {e.path for e in mirror.access_entries() if e.path.startswith(f"/v2/{NAME}/")}
    for host in HOSTS.values():  # containerd named the host in ns: no path prefix
        assert f"/v2/{NAME}/manifests/1?ns={host}" in asked, sorted(asked)


def test_skopeo_path_prefix_gets_each_upstreams_own_image(world, tmp_path):
    mirror, _, images = world
    conf = registries_conf(tmp_path / "registries.conf", mirror)
    skopeo = Skopeo(tmp_path / "skopeo", mirror)
    for name, image in images.items():
        got = skopeo_copy(skopeo, conf, name, tmp_path / f"out-{name}")
        assert got == {"digest": image.digest, "layers": image.layers, "config": image.config}
        for digest, data in image.blobs.items():
            assert (tmp_path / f"out-{name}" / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == data
    assert images["a"].digest != images["b"].digest


def test_cached_images_are_served_with_the_upstreams_stopped(world, tmp_path):
    """skopeo warms the cache by path prefix; with both upstreams stopped, a fresh containerd pulls the
    same images by ``ns`` and a fresh skopeo layout gets them again: the two routes share one cache."""
    mirror, upstreams, images = world
    conf = registries_conf(tmp_path / "registries.conf", mirror)
    skopeo = Skopeo(tmp_path / "skopeo", mirror)
    for name in HOSTS:
        skopeo_copy(skopeo, conf, name, tmp_path / f"warm-{name}")
    for upstream in upstreams.values():
        upstream.stop()
    ctd = Containerd(tmp_path / "containerd")
    try:
        hosts = hosts_dir(tmp_path / "hosts", mirror)
        for name in HOSTS:
            before = containerd_content(ctd)
            ctr_fetch(ctd, hosts, name)
            assert containerd_content(ctd) - before == set(images[name].blobs) | {images[name].digest}
    finally:
        ctd.stop()
    for name, image in images.items():
        got = skopeo_copy(skopeo, conf, name, tmp_path / f"cold-{name}")
        assert got == {"digest": image.digest, "layers": image.layers, "config": image.config}


def test_oras_artifact_through_a_path_prefix(world, tmp_path):
    """oras pushes a file artifact to upstream ``b`` directly and pulls it through the mirror at
    ``<mirror>/registry-b.example``: the same files; upstream ``a`` does not have it (404)."""
    mirror, upstreams, _ = world
    payload = tmp_path / "push" / "payload.bin"
    payload.parent.mkdir()
    payload.write_bytes(b"artifact bytes from b\n" * 1000)
    pusher = OrasClient(hostname=f"127.0.0.1:{upstreams['b'].port}", insecure=True)
    resp = pusher.push(target=f"127.0.0.1:{upstreams['b'].port}/{NAME}:art",
                       files=[f"{payload}:application/vnd.example.file.v1"], disable_path_validation=True,
                       quiet=True)
    assert resp.status_code == 201, resp.text
    puller = OrasClient(hostname=mirror.host, insecure=True)
    pulled = puller.pull(target=f"{mirror.host}/{HOSTS['b']}/{NAME}:art", outdir=str(tmp_path / "out"))
    assert [p.rsplit("/", 1)[-1] for p in pulled] == ["payload.bin"]
    assert (tmp_path / "out" / "payload.bin").read_bytes() == payload.read_bytes()
    missing = requests.get(f"{mirror.url}/v2/{HOSTS['a']}/{NAME}/manifests/art", timeout=30)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
