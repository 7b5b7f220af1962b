"""A real client (skopeo) pushing over an immutable tag gets the DENIED error, and the tag keeps its image."""
from __future__ import annotations

import itertools
import uuid

import pytest

from tests.support.e2e_oci import MANIFEST_V1, OciLayout, expect, fresh, random_bytes
from tests.support.e2e_server import RegistryServer
from tests.support.e2e_skopeo import Skopeo

pytestmark = pytest.mark.e2e
_counter = itertools.count()


@pytest.fixture
def immutable_registry(redis_server, tmp_path):
    config = tmp_path / "registry.toml"
    config.write_text("[[immutable_tags.rules]]\nrepositories = [\"e2e/**\"]\n"
                      "tags = '^v?[0-9]+\\.[0-9]+\\.[0-9]+$'\n")
    server = RegistryServer(tmp_path / "server", redis_url=redis_server,
                            key_prefix=f"e2eimm{next(_counter)}x{uuid.uuid4().hex[:8]}",
                            env={"REGISTRY_EXT_CONFIG": str(config)})
    try:
        server.start()
        yield server
    finally:
        server.close()


def image_layout(root, seed: int):
    layout = OciLayout(root)
    image = layout.add_image(arch="amd64", labels={"seed": str(seed)},
                             layers=[{"data.bin": random_bytes(4096, seed=seed)}])
    layout.tag(image["descriptor"], "src")
    return image


def test_skopeo_pushing_over_an_immutable_tag_is_denied(immutable_registry, tmp_path):
    skopeo = Skopeo(tmp_path / "skopeo-home", immutable_registry)
    first, second = image_layout(tmp_path / "a", 1), image_layout(tmp_path / "b", 2)
    ref = f"docker://{immutable_registry.host}/e2e/app:1.2.3"
    skopeo.run("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'a'}:src", ref)
    skopeo.run("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'a'}:src", ref)  # the same image: fine

    refused = skopeo.run("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'b'}:src", ref, check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower()
    assert "tag '1.2.3' is immutable and cannot be moved: immutable_tags.rules[1]" in refused.stderr

    resp = expect(fresh("GET", f"{immutable_registry.url}/v2/e2e/app/manifests/1.2.3",
                        headers={"Accept": MANIFEST_V1}), 200)
    assert resp.content == first["manifest"] != second["manifest"]
    skopeo.run("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'b'}:src",
               f"docker://{immutable_registry.host}/e2e/app:latest")  # other tags still move
