"""Push and pull real OCI images with skopeo and compare digests bit for bit."""
from __future__ import annotations

import json

import pytest

from tests.support.e2e_oci import (INDEX_V1, MANIFEST_V1, OciLayout, describe, digest_of, expect, fresh,
                     layout_blob, layout_blob_digests, random_bytes, reachable_digests,
                     read_layout)
from tests.support.e2e_skopeo import Skopeo

pytestmark = pytest.mark.e2e

LABELS = {"org.example.suite": "e2e", "org.example.flavour": "skopeo"}


@pytest.fixture
def skopeo(tmp_path, registry):
    return Skopeo(tmp_path / "skopeo-home", registry)


def build_image(root, arch="amd64", seed=0):
    layout = OciLayout(root)
    image = layout.add_image(arch=arch, labels=LABELS, layers=[
        {"hello.txt": f"hello from {arch}\n".encode(),
         "bin/tool": random_bytes(1_500_000, seed=seed + 10)},  # incompressible: ~1.5 MB gz
        {"etc/motd": b"welcome\n" * 100},
    ])
    return layout, image


def assert_same_layout_content(src, src_desc, dst, tag):
    """``tag`` in layout ``dst`` is byte-identical to ``src_desc`` in ``src``."""
    entry = read_layout(dst, tag)
    assert entry["digest"] == src_desc["digest"], (entry, src_desc)
    assert entry["mediaType"] == src_desc["mediaType"], (entry, src_desc)
    assert entry["size"] == src_desc["size"], (entry, src_desc)
    want = reachable_digests(src, src_desc)
    got = reachable_digests(dst, entry)
    assert got == want, f"blob digests differ: missing {want - got}, extra {got - want}"
    assert want <= layout_blob_digests(dst)
    for digest in want:
        body = layout_blob(dst, digest)
        assert digest_of(body) == digest, f"{digest} corrupted in {dst}"
        assert body == layout_blob(src, digest)


def test_skopeo_copy_roundtrip_preserves_digests(registry, skopeo, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    layout, image = build_image(src)
    layout.tag(image["descriptor"], "v1")
    ref = f"docker://{registry.host}/e2e/skopeo/app:v1"

    skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{src}:v1", ref)

    # The registry serves exactly the bytes skopeo pushed.
    resp = expect(fresh("GET", f"{registry.url}/v2/e2e/skopeo/app/manifests/v1",
                        headers={"Accept": MANIFEST_V1}), 200)
    assert resp.content == image["manifest"]
    assert resp.headers.get("Docker-Content-Digest") == image["descriptor"]["digest"], describe(resp)
    assert resp.headers.get("Content-Type") == MANIFEST_V1, describe(resp)
    for desc in [image["config_descriptor"], *image["layers"]]:
        head = expect(fresh("HEAD", f"{registry.url}/v2/e2e/skopeo/app/blobs/{desc['digest']}"), 200)
        assert head.headers.get("Content-Length") == str(desc["size"]), describe(head)

    skopeo.run("copy", "--preserve-digests", "--src-tls-verify=false", ref, f"oci:{dst}:v1")
    assert_same_layout_content(src, image["descriptor"], dst, "v1")

    # Pushing the same image again (all blobs already present) is a no-op upload-wise.
    skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{src}:v1", ref)
    resp = expect(fresh("GET", f"{registry.url}/v2/e2e/skopeo/app/manifests/v1",
                        headers={"Accept": MANIFEST_V1}), 200)
    assert resp.content == image["manifest"]

    # Registry-to-registry copy into another repository: skopeo's blob-info
    # cache knows the blobs live in e2e/skopeo/app, so it tries a cross-repo
    # mount (POST ...?mount=&from=); 201 or a 202 fallback must both work.
    mirror = f"docker://{registry.host}/e2e/skopeo/mirror:v1"
    skopeo.run("copy", "--preserve-digests", "--src-tls-verify=false",
               "--dest-tls-verify=false", ref, mirror)
    resp = expect(fresh("GET", f"{registry.url}/v2/e2e/skopeo/mirror/manifests/v1",
                        headers={"Accept": MANIFEST_V1}), 200)
    assert resp.content == image["manifest"]
    for desc in [image["config_descriptor"], *image["layers"]]:
        blob = expect(fresh("GET", f"{registry.url}/v2/e2e/skopeo/mirror/blobs/{desc['digest']}"), 200)
        assert digest_of(blob.content) == desc["digest"]


def test_skopeo_inspect_and_list_tags(registry, skopeo, tmp_path):
    src = tmp_path / "src"
    layout, image = build_image(src, seed=1)
    layout.tag(image["descriptor"], "1.0")
    base = f"docker://{registry.host}/e2e/inspect"
    for tag in ("1.0", "latest", "1.0-rc1"):
        skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false",
                   f"oci:{src}:1.0", f"{base}:{tag}")

    info = skopeo.json("inspect", "--tls-verify=false", f"{base}:latest")
    assert info["Digest"] == image["descriptor"]["digest"], info
    assert sorted(info["RepoTags"]) == ["1.0", "1.0-rc1", "latest"], info
    assert info["Architecture"] == "amd64" and info["Os"] == "linux", info
    assert info["Layers"] == [layer["digest"] for layer in image["layers"]], info
    assert info["Labels"] == LABELS, info
    assert info["Created"].startswith("2024-01-01T00:00:00"), info
    assert info["Name"] == f"{registry.host}/e2e/inspect", info

    raw = skopeo.run("inspect", "--raw", "--tls-verify=false", f"{base}:1.0").stdout
    assert raw.rstrip("\n").encode() == image["manifest"].rstrip(b"\n")
    raw_config = skopeo.run("inspect", "--raw", "--config", "--tls-verify=false", f"{base}:1.0").stdout
    assert json.loads(raw_config) == json.loads(image["config"])
    assert digest_of(raw_config.rstrip("\n").encode()) == image["config_descriptor"]["digest"]

    by_digest = skopeo.json("inspect", "--no-tags", "--tls-verify=false",
                            f"{base}@{image['descriptor']['digest']}")
    assert by_digest["Digest"] == image["descriptor"]["digest"], by_digest

    tags = skopeo.json("list-tags", "--tls-verify=false", base)
    assert tags["Repository"] == f"{registry.host}/e2e/inspect", tags
    assert sorted(tags["Tags"]) == ["1.0", "1.0-rc1", "latest"], tags

    missing = skopeo.run("inspect", "--tls-verify=false", f"{base}:nope", check=False)
    assert missing.returncode != 0
    assert "manifest unknown" in missing.stderr.lower(), missing.stderr[-2000:]


def test_skopeo_copy_all_multi_arch_index(registry, skopeo, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    layout, amd64 = build_image(src, arch="amd64", seed=2)
    arm64 = layout.add_image(arch="arm64", labels=LABELS, layers=[
        {"hello.txt": b"hello from arm64\n", "bin/tool": random_bytes(300_000, seed=99)}])
    index = layout.add_index([amd64, arm64])
    layout.tag(index["descriptor"], "multi")
    ref = f"docker://{registry.host}/e2e/multi:multi"

    skopeo.run("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
               f"oci:{src}:multi", ref)

    resp = expect(fresh("GET", f"{registry.url}/v2/e2e/multi/manifests/multi",
                        headers={"Accept": f"{INDEX_V1}, {MANIFEST_V1}"}), 200)
    assert resp.content == index["index"]
    assert resp.headers.get("Content-Type") == INDEX_V1, describe(resp)
    assert resp.headers.get("Docker-Content-Digest") == index["descriptor"]["digest"], describe(resp)
    for image in (amd64, arm64):
        digest = image["descriptor"]["digest"]
        got = expect(fresh("GET", f"{registry.url}/v2/e2e/multi/manifests/{digest}",
                           headers={"Accept": MANIFEST_V1}), 200)
        assert got.content == image["manifest"]

    raw = skopeo.run("inspect", "--raw", "--tls-verify=false", ref).stdout
    assert raw.rstrip("\n").encode() == index["index"].rstrip(b"\n")
    arm = skopeo.json("--override-arch", "arm64", "inspect", "--tls-verify=false", ref)
    assert arm["Architecture"] == "arm64", arm
    assert arm["Layers"] == [layer["digest"] for layer in arm64["layers"]], arm

    skopeo.run("copy", "--all", "--preserve-digests", "--src-tls-verify=false", ref,
               f"oci:{dst}:multi")
    assert_same_layout_content(src, index["descriptor"], dst, "multi")
