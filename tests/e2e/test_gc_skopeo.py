"""After an online gc (the server keeps serving), skopeo pulls every kept tag bit for bit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support.e2e_oci import OciLayout, expect, fresh, layout_blob, random_bytes, reachable_digests, read_layout
from tests.support.e2e_skopeo import Skopeo

pytestmark = pytest.mark.e2e


@pytest.fixture
def skopeo(tmp_path, registry):
    return Skopeo(tmp_path / "skopeo-home", registry)


def test_skopeo_pulls_every_kept_tag_after_gc(registry, skopeo, tmp_path):
    src = OciLayout(tmp_path / "src")
    images = {}
    for seed, tag in enumerate(("keep-1", "keep-2", "gone")):
        image = src.add_image(layers=[{"shared.txt": b"shared layer\n"},
                                      {"own.bin": random_bytes(300_000, seed=seed + 40)}])
        src.tag(image["descriptor"], tag)
        images[tag] = image
        skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{src.root}:{tag}",
                   f"docker://{registry.host}/e2e/gc/app:{tag}")
    gone = images["gone"]["descriptor"]["digest"]
    expect(fresh("DELETE", f"{registry.url}/v2/e2e/gc/app/manifests/{gone}"), 202)
    then = time.time() - 7200  # everything on storage is two hours old: only references keep it
    for folder, _dirs, files in os.walk(registry.data_dir):
        for name in files:
            os.utime(os.path.join(folder, name), (then, then))

    done = subprocess.run([sys.executable, "-m", "registry_ext.cli", "gc", "--grace-period", "3600",
                           "--data-dir", str(registry.data_dir), "--redis-url", registry.redis_url,
                           "--key-prefix", registry.key_prefix], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["blobs_deleted"] == 3  # the deleted image's manifest, config and own layer
    assert report["repositories"]["e2e/gc/app"]["links_removed"] == 2
    metrics = expect(fresh("GET", f"{registry.url}/metrics"), 200).text  # the workers read the run from Redis
    assert "registry_gc_runs_total 1.0" in metrics
    assert f"registry_gc_bytes_freed_total {float(report['bytes_freed'])}" in metrics

    for tag in ("keep-1", "keep-2"):
        dst = tmp_path / f"pulled-{tag}"
        skopeo.run("copy", "--preserve-digests", "--src-tls-verify=false",
                   f"docker://{registry.host}/e2e/gc/app:{tag}", f"oci:{dst}:{tag}")
        entry = read_layout(dst, tag)
        assert entry["digest"] == images[tag]["descriptor"]["digest"]
        for digest in reachable_digests(src.root, images[tag]["descriptor"]):
            assert layout_blob(dst, digest) == layout_blob(src.root, digest)
    assert skopeo.run("inspect", "--tls-verify=false", f"docker://{registry.host}/e2e/gc/app:gone",
                      check=False).returncode != 0
