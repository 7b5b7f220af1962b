"""Edge cases beyond the conformance suite: refused writes change nothing, sizes are checked,
disabled deletes say what is allowed, unknown repositories are never created by a failed request."""
import json

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from tests.support.oci_client import (EMPTY_DIGEST, OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST, assert_error, image_manifest,
                                      make_image, open_session, push_blob, sha256_digest)


def test_refused_manifest_does_not_link_the_empty_blob(client, app):
    missing = {"mediaType": "application/octet-stream", "digest": "sha256:" + "9" * 64, "size": 3}
    body = image_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}, [missing])
    resp = client.put("/v2/fresh/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.head(f"/v2/fresh/blobs/{EMPTY_DIGEST}").status_code == 404
    assert not app.extensions["registry"].storage.repos.exists("fresh")


def test_accepted_artifact_serves_the_empty_blob(client):
    body = image_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}, [])
    assert client.put("/v2/art/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    resp = client.get(f"/v2/art/blobs/{EMPTY_DIGEST}")
    assert resp.status_code == 200 and resp.data == b"{}"


@pytest.mark.parametrize("which", ["config", "layer", "empty"])
def test_descriptor_size_must_match_the_blob(client, which):
    config = push_blob(client, "sz", b'{"os":"linux"}')
    layer = push_blob(client, "sz", b"layer-bytes")
    config_desc = {"mediaType": OCI_CONFIG, "digest": config, "size": 14}
    layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 11}
    if which == "config":
        config_desc["size"] = 15
    elif which == "layer":
        layer_desc["size"] = 10
    else:
        config_desc = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 999}
    body = image_manifest(config_desc, [layer_desc])
    resp = client.put("/v2/sz/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    doc = assert_error(resp, 400, "MANIFEST_INVALID")
    assert "size" in doc["errors"][0]["message"]


def test_delete_in_unknown_repository_is_name_unknown_and_creates_nothing(client, app):
    for path in ("/v2/ghost/manifests/latest", "/v2/ghost/manifests/" + "sha256:" + "1" * 64):
        assert_error(client.delete(path), 404, "NAME_UNKNOWN")
    assert not app.extensions["registry"].storage.repos.exists("ghost")


def test_disabled_deletes_are_405_with_allow(settings):
    client = create_app(replace(settings, "storage", delete_enabled=False)).test_client()
    make_image(client, "keep", tag="v1")
    manifest = client.get("/v2/keep/manifests/v1")
    digest = manifest.headers["Docker-Content-Digest"]
    resp = client.delete(f"/v2/keep/manifests/{digest}")
    assert_error(resp, 405, "UNSUPPORTED")
    assert resp.headers["Allow"] == "GET, HEAD, PUT"
    config = json.loads(manifest.data)["config"]["digest"]
    resp = client.delete(f"/v2/keep/blobs/{config}")
    assert_error(resp, 405, "UNSUPPORTED")
    assert resp.headers["Allow"] == "GET, HEAD"
    assert client.get(f"/v2/keep/manifests/{digest}").status_code == 200


def test_malformed_content_range_is_400_and_out_of_order_is_416(client):
    session = open_session(client, "cr")
    resp = client.patch(session, data=b"abc", headers={"Content-Range": "bytes=abc"})
    assert_error(resp, 400, "BLOB_UPLOAD_INVALID")
    assert client.patch(session, data=b"abc", headers={"Content-Range": "0-2"}).status_code == 202
    resp = client.patch(session, data=b"abc", headers={"Content-Range": "5-7"})
    assert_error(resp, 416, "BLOB_UPLOAD_INVALID")
    assert resp.headers["Range"] == "0-2"


def test_double_slash_in_name_is_name_invalid_not_a_redirect(client):
    assert_error(client.get("/v2/demo//app/tags/list"), 400, "NAME_INVALID")


def test_tag_delete_retry_cleans_a_stale_index_entry(client, app):
    make_image(client, "stale", tag="t1")
    reg = app.extensions["registry"]
    reg.storage.repos.delete_tag("stale", "t1")  # as if the index step of a delete had failed
    assert "t1" in client.get("/v2/stale/tags/list").json["tags"]
    assert_error(client.delete("/v2/stale/manifests/t1"), 404, "MANIFEST_UNKNOWN")
    assert "t1" not in client.get("/v2/stale/tags/list").json["tags"]


def test_monolithic_body_digest_is_per_algorithm(client):
    data = b"x" * 10
    resp = client.post("/v2/alg/blobs/uploads/?digest=sha512:" + "0" * 128, data=data)
    assert_error(resp, 400, "DIGEST_INVALID")
    assert client.head("/v2/alg/blobs/" + sha256_digest(data)).status_code == 404


def test_parent_of_a_repository_is_not_a_repository(client, app):
    make_image(client, "org/app", tag="v1")
    assert_error(client.get("/v2/org/manifests/v1"), 404, "NAME_UNKNOWN")
    assert_error(client.delete("/v2/org/manifests/v1"), 404, "NAME_UNKNOWN")
    assert not app.extensions["registry"].storage.repos.exists("org")
    assert client.get("/v2/_catalog").json == {"repositories": ["org/app"]}


def test_index_child_size_must_match(client):
    make_image(client, "idx", tag="v1")
    child = client.get("/v2/idx/manifests/v1")
    entry = {"mediaType": OCI_MANIFEST, "digest": child.headers["Docker-Content-Digest"], "size": len(child.data) + 1}
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [entry]}).encode()
    resp = client.put("/v2/idx/manifests/multi", data=body,
                      headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert_error(resp, 400, "MANIFEST_INVALID")


def test_empty_mount_source_falls_back_to_a_session(client):
    digest = push_blob(client, "src", b"shared")
    resp = client.post(f"/v2/dst/blobs/uploads/?mount={digest}&from=")
    assert resp.status_code == 202 and "/blobs/uploads/" in resp.headers["Location"]


def test_expired_upload_is_unknown_and_removed(client, app, settings):
    session = open_session(client, "exp")
    upload_id = session.rsplit("/", 1)[1].split("?")[0]
    folder = app.extensions["registry"].storage.layout.upload_dir(upload_id)
    info = json.loads((folder / "info.json").read_bytes())
    info["started_at"] -= (settings.limits.upload_ttl_seconds + 1) * 1000
    (folder / "info.json").write_text(json.dumps(info))
    assert_error(client.patch(session, data=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not folder.exists()
