"""Garbage collection (services/gc.py, docs/gc.md): what it keeps, what it sweeps, and the races it survives.

Real Redis, real filesystem, the Flask test client. The races are made
deterministic by running the collection *inside* the writer's step it races
(a storage method of the writer's path wrapped to run gc first), so every
interleaving named in docs/gc.md happens exactly, without sleeps.
"""
from __future__ import annotations

import os
import time

import pytest

from registry_ext.oci.digest import parse_digest
from registry_ext.services.check import check
from registry_ext.services.gc import GarbageCollector
from tests.support.oci_client import (OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, assert_error, blob_body, descriptor,
                                      image_index, image_manifest, location, make_image, push_blob,
                                      push_manifest, random_config, sha256_digest, start_upload, with_query)

HOUR = 3600


@pytest.fixture
def reg(app):
    return app.extensions["registry"]


def age(path, seconds: int = 2 * HOUR) -> None:
    """Date a file back, as if last touched ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def age_all(reg, seconds: int = 2 * HOUR) -> None:
    """Date every blob and blob link back (a registry whose content is older than the grace period)."""
    for folder, _dirs, files in os.walk(reg.storage.layout.root):
        if "/blobs" in folder or "/_blobs" in folder:
            for name in files:
                age(os.path.join(folder, name), seconds)


def collect(reg, grace: int = HOUR, dry_run: bool = False):
    return GarbageCollector(reg.storage, grace).collect(dry_run=dry_run)


def blob_exists(reg, digest: str) -> bool:
    return reg.storage.blobs.size(parse_digest(digest)) is not None


def pull_all(client, name: str, image: dict) -> None:
    """The manifest by tag and every blob it references are served."""
    ref = image["tag"] or image["manifest"]
    assert client.get(f"/v2/{name}/manifests/{ref}").get_data() == image["body"]
    for digest in [image["config"], *image["layers"]]:
        assert client.get(f"/v2/{name}/blobs/{digest}").status_code == 200, digest


# -- what is kept, what goes ----------------------------------------------------------------------

def size_of(reg, digest: str) -> int:
    return reg.storage.blobs.size(parse_digest(digest))


def test_deleted_manifest_blobs_go_shared_and_tagged_ones_stay(client, reg):
    keep = make_image(client, "app", layers=(b"shared", b"only-keep"), tag="1.0")
    gone = make_image(client, "app", layers=(b"shared", b"only-gone"), tag="2.0")
    other = make_image(client, "other", layers=(b"only-gone",), tag="x")  # the same bytes in another repository
    config_size = size_of(reg, gone["config"])
    assert client.delete(f"/v2/app/manifests/{gone['manifest']}").status_code == 202
    age_all(reg)
    report = collect(reg)
    # app loses the config and the layer only the deleted image used; the layer's bytes stay for `other`
    assert report.repositories["app"].links_removed == 2
    assert not blob_exists(reg, gone["config"]) and not blob_exists(reg, gone["manifest"])
    assert blob_exists(reg, sha256_digest(b"only-gone"))
    assert client.head(f"/v2/app/blobs/{sha256_digest(b'only-gone')}").status_code == 404
    assert (report.blobs_deleted, report.bytes_freed) == (2, config_size + gone["size"])
    assert report.repositories["app"].bytes_freed == config_size  # its link went here
    assert (report.unattributed_blobs, report.unattributed_bytes) == (1, gone["size"])  # the manifest's bytes
    pull_all(client, "app", keep)
    pull_all(client, "other", other)
    assert check(reg.storage, reg.index).findings == []
    assert [e.event for e in reg.storage.repos.history("app", "2.0")] == ["created", "deleted"]


def test_a_second_run_finds_nothing(client, reg):
    gone = make_image(client, "app", layers=(b"a",), tag="1.0")
    client.delete(f"/v2/app/manifests/{gone['manifest']}")
    age_all(reg)
    assert collect(reg).blobs_deleted == 3
    again = collect(reg)
    assert (again.blobs_deleted, again.links_removed, again.bytes_freed) == (0, 0, 0)


def test_untagged_manifests_and_what_they_reference_are_kept(client, reg):
    untagged = make_image(client, "app", layers=(b"u",), tag=None)
    tagged = make_image(client, "app", layers=(b"t",), tag="1.0")
    client.delete("/v2/app/manifests/1.0")  # a tag delete leaves the manifest: untagged now
    age_all(reg)
    report = collect(reg, grace=0)
    assert (report.blobs_deleted, report.links_removed) == (0, 0)
    assert report.repositories["app"].untagged_manifests == 2
    pull_all(client, "app", untagged)
    assert client.get(f"/v2/app/manifests/{tagged['manifest']}").status_code == 200


def test_index_children_and_referrers_are_reached_from_a_tag(client, reg):
    amd = make_image(client, "app", layers=(b"amd",), tag=None)
    arm = make_image(client, "app", layers=(b"arm",), tag=None)
    index = image_index([descriptor("application/vnd.oci.image.manifest.v1+json", amd["body"]),
                         descriptor("application/vnd.oci.image.manifest.v1+json", arm["body"])])
    assert push_manifest(client, "app", "multi", index, OCI_INDEX).status_code == 201
    sbom = make_image(client, "app", layers=(b"sbom",), tag=None, subject=descriptor(OCI_INDEX, index))
    orphan = make_image(client, "app", layers=(b"orphan",), tag=None)
    age_all(reg)
    report = collect(reg, grace=0)
    assert report.repositories["app"].untagged_manifests == 1  # only `orphan`: nothing reaches it (kept)
    assert report.blobs_deleted == 0
    for image in (amd, arm, sbom, orphan):
        pull_all(client, "app", image)


def test_blobs_touched_within_the_grace_period_are_kept(client, reg):
    push_blob(client, "app", b"just uploaded, manifest not pushed yet")
    old = push_blob(client, "app", b"uploaded long ago, never referenced")
    age(reg.storage.layout.blob_link("app", parse_digest(old)))
    age(reg.storage.layout.blob(parse_digest(old)))
    report = collect(reg, grace=HOUR)
    assert report.blobs_deleted == 1 and not blob_exists(reg, old)
    assert blob_exists(reg, sha256_digest(b"just uploaded, manifest not pushed yet"))


def test_a_manifest_whose_bytes_are_unreadable_keeps_its_repositorys_links(client, reg):
    image = make_image(client, "app", layers=(b"a",), tag="1.0")
    os.unlink(reg.storage.layout.blob(parse_digest(image["manifest"])))
    age_all(reg)
    report = collect(reg, grace=0)
    assert report.unreadable == [f"app@{image['manifest']}"]
    assert (report.links_removed, report.blobs_deleted) == (0, 0)
    assert blob_exists(reg, image["layers"][0])


def test_a_damaged_manifest_link_keeps_its_repositorys_links(client, reg):
    image = make_image(client, "app", layers=(b"a",), tag="1.0")
    reg.storage.layout.manifest_link("app", parse_digest(image["manifest"])).write_bytes(b"{torn")
    age_all(reg)
    report = collect(reg, grace=0)
    assert report.unreadable == [f"app@{image['manifest']}"]
    assert (report.links_removed, report.blobs_deleted) == (0, 0)


# -- races ------------------------------------------------------------------------------------------

def wrap(monkeypatch, obj, method: str, before):
    """Run ``before()`` the first time ``obj.method`` is called (then the real method)."""
    real = getattr(obj, method)
    calls = []

    def wrapped(*args, **kwargs):
        if not calls:
            calls.append(1)
            before()
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, wrapped)
    return calls


def unreferenced_manifest(client, reg, name: str, layer: bytes) -> tuple[bytes, str, bytes]:
    """A manifest body referencing ``layer`` and a config (uploaded to ``name`` long ago, unreferenced),
    not pushed yet; with the layer's digest and the config."""
    config = random_config()
    push_blob(client, name, config)
    push_blob(client, name, layer)
    age_all(reg)
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER_GZIP, layer)])
    return body, sha256_digest(layer), config


def test_a_manifest_push_racing_the_sweep_of_its_blobs_is_refused_cleanly(client, reg, monkeypatch):
    body, layer, config = unreferenced_manifest(client, reg, "app", b"layer")
    # the push checked its blobs (links present); gc sweeps them before the push takes the lock
    calls = wrap(monkeypatch, reg.storage.blobs, "put_bytes", lambda: collect(reg))
    resp = push_manifest(client, "app", "1.0", body)
    assert calls and assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get("/v2/app/manifests/1.0").status_code == 404
    assert reg.storage.repos.manifest_digests("app") == []
    assert check(reg.storage, reg.index).findings == []
    # the client uploads again and the push goes through
    monkeypatch.undo()
    push_blob(client, "app", b"layer")
    push_blob(client, "app", config)
    assert push_manifest(client, "app", "1.0", body).status_code == 201
    assert blob_body(client, "app", layer) == b"layer"


def test_a_manifest_pushed_during_the_sweep_keeps_its_blobs(client, reg, monkeypatch):
    body, layer, _config = unreferenced_manifest(client, reg, "app", b"layer")
    # the push is through before gc takes the repository lock: gc decides again under it and keeps all
    calls = wrap(monkeypatch, reg.storage.repos, "lock", lambda: push_manifest(client, "app", "1.0", body))
    report = collect(reg, grace=0)
    assert calls and (report.links_removed, report.blobs_deleted) == (0, 0)
    assert client.get("/v2/app/manifests/1.0").get_data() == body
    assert client.get(f"/v2/app/blobs/{layer}").status_code == 200


def test_a_mount_racing_the_last_links_removal_either_keeps_the_blob_or_uploads(client, reg, monkeypatch):
    gone = make_image(client, "src", layers=(b"mounted",), tag="1.0")
    client.delete(f"/v2/src/manifests/{gone['manifest']}")
    layer = gone["layers"][0]
    age_all(reg)
    # 1. gc takes src's last link and the blob after the mount saw src's link, before it touched the blob
    wrap(monkeypatch, reg.storage.blobs, "touch", lambda: collect(reg))
    resp = start_upload(client, "dst", mount=layer, **{"from": "src"})
    assert resp.status_code == 202  # no blob left to mount: an upload session instead, nothing promised
    assert not blob_exists(reg, layer) and not reg.storage.repos.has_blob("dst", parse_digest(layer))
    assert check(reg.storage, reg.index).findings == []


def test_a_mount_that_touched_the_blob_first_keeps_it(client, reg, monkeypatch):
    gone = make_image(client, "src", layers=(b"mounted",), tag="1.0")
    client.delete(f"/v2/src/manifests/{gone['manifest']}")
    layer = gone["layers"][0]
    age_all(reg)
    # 2. the mount touched the blob; gc runs before the mount writes its link
    wrap(monkeypatch, reg.blobs, "link", lambda: collect(reg))
    resp = start_upload(client, "dst", mount=layer, **{"from": "src"})
    assert resp.status_code == 201
    assert blob_body(client, "dst", layer) == b"mounted"


def test_a_touch_between_the_listing_and_the_removal_puts_the_blob_back(client, reg, monkeypatch):
    gone = make_image(client, "src", layers=(b"mounted",), tag="1.0")
    client.delete(f"/v2/src/manifests/{gone['manifest']}")
    layer = gone["layers"][0]
    age_all(reg)
    digest = parse_digest(layer)
    real_take = reg.storage.blobs.take
    taken = []

    def take(candidate, cutoff):
        # gc listed the blob as old; a mount that saw src's link before gc removed it touches the blob
        # and links it into dst (the rest of UploadService.mount) just before gc renames the blob away
        if candidate == digest:
            assert reg.storage.blobs.touch(digest)
            reg.blobs.link("dst", digest)
        taken.append((candidate, real_take(candidate, cutoff)))
        return taken[-1][1]

    monkeypatch.setattr(reg.storage.blobs, "take", take)
    report = collect(reg, grace=HOUR)
    assert (digest, None) in taken  # renamed away, found touched, put back
    assert blob_body(client, "dst", layer) == b"mounted"
    assert [files for _dir, _dirs, files in os.walk(reg.storage.layout.quarantine) if files] == []
    assert report.repositories["src"].links_removed == 2


def test_an_upload_finishing_while_gc_lists_blobs_keeps_its_blob(client, reg, monkeypatch):
    gone = make_image(client, "app", layers=(b"re-uploaded",), tag="1.0")
    client.delete(f"/v2/app/manifests/{gone['manifest']}")
    layer = gone["layers"][0]
    session = location(start_upload(client, "app"))
    age_all(reg)
    real = reg.storage.blobs.stored

    def stored():
        listed = list(real())  # gc sees the old, unreferenced blob ...
        resp = client.put(with_query(session, digest=layer), data=b"re-uploaded")  # ... the upload finishes
        assert resp.status_code == 201
        yield from listed

    monkeypatch.setattr(reg.storage.blobs, "stored", stored)
    report = collect(reg, grace=HOUR)
    assert blob_body(client, "app", layer) == b"re-uploaded"
    assert sha256_digest(b"re-uploaded") not in [item[2] for item in report.items]
    assert not blob_exists(reg, gone["config"])
