"""Garbage collection with the registry's storage in a bucket of a real S3 server (Ceph RGW) and its
leases in the real redis-server (docs/gc.md#on-s3): what it frees and keeps, the races it survives
(in a fixed interleaving: the racing request is sent from another thread, to a second app standing
for another host, while gc holds a blob's lease at the ``gc.before-delete`` failpoint), and the
``gc`` command, which no longer refuses S3.

S3 cannot date an object back: ``cutoff_now`` (tests/support/object_gc.py) is a cutoff after
everything written so far, and gc is run with the grace period that puts its cutoff there.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner

from registry_ext import create_app, failpoints
from registry_ext.cli import main
from registry_ext.index.gc_state import GcState
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.services.check import check
from registry_ext.services.gc import GarbageCollector
from registry_ext.services.gc_schedule import run_gc
from tests.support.flask_client import BufferedClient
from tests.support.object_gc import GIVE, Racer, cutoff_now
from tests.support.oci_client import (OCI_CONFIG, OCI_LAYER_GZIP, assert_error, blob_body, descriptor,
                                      image_manifest, make_image, push_blob, push_blob_monolithic, push_manifest,
                                      random_config, sha256_digest, start_upload)
from tests.test_gc import blob_exists, pull_all


@pytest.fixture
def reg(app):
    return app.extensions["registry"]


@pytest.fixture
def host2(settings):
    """A second registry on the same bucket and Redis (another host: leases of its own)."""
    app = create_app(settings)
    app.test_client_class = BufferedClient
    return app


def collect(reg, cutoff: float, dry_run: bool = False):
    """One gc run whose cutoff is ``cutoff`` (its grace period reaches back to it)."""
    return GarbageCollector(reg.storage, time.time() - cutoff, reg.index).collect(dry_run=dry_run)


def linked(reg, name: str, digest: str) -> bool:
    return reg.storage.repos.has_blob(name, parse_digest(digest))


def stored_digests(reg) -> set[str]:
    return {str(blob.digest) for blob in reg.storage.blobs.stored()}


def assert_manifests_complete(reg, name: str) -> None:
    """Every manifest of ``name`` has its bytes, and every blob it references is stored and linked."""
    for digest in reg.storage.repos.manifest_digests(name):
        record = reg.storage.repos.manifest(name, digest)
        data = reg.storage.blobs.read(digest)
        assert data is not None, f"{name}@{digest}: bytes gone"
        for blob in parse_manifest(data, record.media_type).required_blobs():
            assert blob_exists(reg, blob.digest) and linked(reg, name, blob.digest), f"{blob.digest} gone"


# -- what goes, what stays ------------------------------------------------------------------------------

def test_gc_of_a_deleted_image_frees_exactly_what_nothing_references(client, reg):
    keep = make_image(client, "app", layers=(b"shared", b"only-keep"), tag="1.0")
    gone = make_image(client, "app", layers=(b"shared", b"only-gone"), tag="2.0")
    other = make_image(client, "other", layers=(b"only-gone",), tag="x")  # the same bytes in another repository
    assert client.delete(f"/v2/app/manifests/{gone['manifest']}").status_code == 202
    config, layer = gone["config"], gone["layers"][1]
    size = {d: reg.storage.blobs.size(parse_digest(d)) for d in (config, layer, gone["manifest"])}
    before = stored_digests(reg)
    cutoff = cutoff_now()
    dry = collect(reg, cutoff, dry_run=True)
    assert sorted(dry.items) == sorted([("link", "app", config, size[config]), ("link", "app", layer, size[layer]),
                                        ("blob", "", config, size[config]),
                                        ("blob", "", gone["manifest"], size[gone["manifest"]])])
    assert stored_digests(reg) == before and linked(reg, "app", config) and linked(reg, "app", layer)
    report = collect(reg, cutoff)
    assert (report.links_removed, report.blobs_deleted, report.bytes_freed) == (2, 2, dry.bytes_freed)
    assert report.repositories["app"].bytes_freed == size[config]
    assert stored_digests(reg) == before - {config, gone["manifest"]}
    assert not linked(reg, "app", config) and not linked(reg, "app", layer)
    assert client.head(f"/v2/app/blobs/{layer}").status_code == 404 and blob_body(client, "other", layer)
    pull_all(client, "app", keep)  # the shared layer stayed
    pull_all(client, "other", other)
    assert check(reg.storage, reg.index).findings == []
    again = collect(reg, cutoff)
    assert (again.links_removed, again.blobs_deleted) == (0, 0)


def test_a_blob_or_a_link_relied_on_after_the_cutoff_is_kept(client, reg):
    gone = make_image(client, "src", layers=(b"mounted",), tag="1.0")
    assert client.delete(f"/v2/src/manifests/{gone['manifest']}").status_code == 202
    layer = gone["layers"][0]
    unreferenced = push_blob(client, "app", b"uploaded long ago, never referenced")
    again = push_blob(client, "app", b"uploaded long ago, and again now")
    cutoff = cutoff_now()
    # after the cutoff: a mount touches src's layer and links it into dst; an upload of the same bytes
    # touches the blob and writes its link again
    assert start_upload(client, "dst", mount=layer, **{"from": "src"}).status_code == 201
    push_blob(client, "app", b"uploaded long ago, and again now")
    report = collect(reg, cutoff)
    assert not linked(reg, "src", layer) and blob_body(client, "dst", layer) == b"mounted"
    assert blob_body(client, "app", again) == b"uploaded long ago, and again now"
    assert not blob_exists(reg, unreferenced) and not linked(reg, "app", unreferenced)
    assert not blob_exists(reg, gone["config"]) and not blob_exists(reg, gone["manifest"])
    assert report.blobs_deleted == 3 and report.links_removed == 3  # src: config, layer; app: the old one


def test_a_repository_gc_empties_leaves_the_catalog_unless_a_blob_is_linked_meanwhile(client, reg, host2,
                                                                                       monkeypatch):
    """S3 has no empty folders: a repository whose last blob links gc removes is gone, from the catalog
    too (on a filesystem its folders stay). An upload linking a blob while gc drops the entry keeps it."""
    abandoned = push_blob(client, "abandoned", b"a push never finished")
    data = b"uploaded again while gc drops the repository"
    push_blob(client, "relinked", data)
    cutoff = cutoff_now()
    real_drop = reg.index.write.drop_repos

    def drop_repos(names):
        if list(names) == ["relinked"]:  # gc found it empty; the upload links the blob, then lists it
            push_blob(host2.test_client(), "relinked", data)
        real_drop(names)

    monkeypatch.setattr(reg.index.write, "drop_repos", drop_repos)
    report = collect(reg, cutoff)
    assert report.links_removed == 2 and report.blobs_deleted == 1 and not blob_exists(reg, abandoned)
    assert client.get("/v2/_catalog").json["repositories"] == ["relinked"]  # dropped, then put back
    assert blob_body(client, "relinked", sha256_digest(data)) == data
    assert check(reg.storage, reg.index).findings == []


# -- races ----------------------------------------------------------------------------------------------

def test_a_mount_waiting_for_a_take_in_progress_finds_the_blob_gone_and_uploads(client, reg, host2, monkeypatch):
    layer = push_blob(client, "src", b"mounted")
    cutoff = cutoff_now()
    # the mount (on the other host) saw src's link; it goes on once gc, holding the blob's lease, has
    # decided to delete the blob
    saw_link, go, answers = threading.Event(), threading.Event(), []
    repos2 = host2.extensions["registry"].storage.repos
    real_has_blob = repos2.has_blob

    def has_blob(name, digest):
        found = real_has_blob(name, digest)
        if name == "src" and not saw_link.is_set():
            saw_link.set()
            go.wait(30)
        return found

    monkeypatch.setattr(repos2, "has_blob", has_blob)
    mount = threading.Thread(target=lambda: answers.append(
        start_upload(host2.test_client(), "dst", mount=layer, **{"from": "src"})))
    mount.start()
    assert saw_link.wait(30)
    waited = []
    real_hit = failpoints.hit

    def hit(point):
        if point == "gc.before-delete" and not go.is_set() and not linked(reg, "src", layer):  # the blob's take
            go.set()
            mount.join(GIVE)
            waited.append(mount.is_alive())  # blocked on the blob's lease
        real_hit(point)

    monkeypatch.setattr(failpoints, "hit", hit)
    report = collect(reg, cutoff)
    mount.join(30)
    assert waited == [True] and report.blobs_deleted == 1
    assert answers[0].status_code == 202  # an upload session: nothing promised, the client uploads
    assert not blob_exists(reg, layer) and not linked(reg, "dst", layer)
    assert client.head(f"/v2/dst/blobs/{layer}").status_code == 404


def test_an_upload_of_the_same_bytes_finishing_while_gc_takes_them_stores_them_again(client, reg, host2, monkeypatch):
    data = b"re-uploaded while gc deletes the old copy"
    digest = push_blob(client, "app", data)
    cutoff = cutoff_now()
    racer = Racer(monkeypatch, "gc.before-delete", lambda: push_blob_monolithic(host2.test_client(), "app", data),
                  when=lambda: not linked(reg, "app", digest))  # the blob's take, after its link's
    report = collect(reg, cutoff)
    assert racer.join() == [digest] and racer.waited  # the upload's touch waited for gc's lease
    assert (report.links_removed, report.blobs_deleted) == (1, 1)  # the old copy and its link
    assert blob_body(client, "app", digest) == data and linked(reg, "app", digest)
    assert check(reg.storage, reg.index).findings == []
    assert collect(reg, cutoff).blobs_deleted == 0  # written after the cutoff


def test_a_manifest_push_racing_the_take_of_its_config_link_is_refused_cleanly(client, reg, host2, monkeypatch):
    config, layer = random_config(), b"layer of a manifest pushed while gc runs"
    config_digest = push_blob(client, "app", config)
    cutoff = cutoff_now()
    push_blob(client, "app", layer)  # uploaded after the cutoff: only the config's link is old
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER_GZIP, layer)])
    # while gc holds the repository's lease and the config's, about to delete the config's link, the
    # push (on the other host) finds both links, then waits for the repository's lease
    racer = Racer(monkeypatch, "gc.before-delete", lambda: push_manifest(host2.test_client(), "app", "1.0", body))
    report = collect(reg, cutoff)
    (resp,) = racer.join()
    assert racer.waited and report.links_removed == 1
    assert_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")  # re-checked under the lease: the config's link is gone
    assert client.get("/v2/app/manifests/1.0").status_code == 404
    assert reg.storage.repos.manifest_digests("app") == []
    assert check(reg.storage, reg.index).findings == []
    # the client uploads again and the push goes through, with everything it references
    monkeypatch.undo()
    push_blob(client, "app", config)
    push_blob(client, "app", layer)
    assert push_manifest(client, "app", "1.0", body).status_code == 201
    assert collect(reg, cutoff_now()).blobs_deleted == 0
    assert_manifests_complete(reg, "app")
    assert blob_body(client, "app", config_digest) == config


def test_a_manifest_pushed_while_gc_takes_another_repositorys_links_keeps_its_blobs(client, reg, host2,
                                                                                    monkeypatch):
    """The push gets the repository's lease before gc: gc decides again under it and keeps everything."""
    config, layer = random_config(), b"layer pushed by digest"
    push_blob(client, "app", config)
    push_blob(client, "app", layer)
    push_blob(client, "a-first", b"an unreferenced blob of a repository gc sweeps first")
    body = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER_GZIP, layer)])
    cutoff = cutoff_now()
    racer = Racer(monkeypatch, "gc.before-delete", lambda: push_manifest(host2.test_client(), "app", "1.0", body))
    report = collect(reg, cutoff)
    assert racer.join()[0].status_code == 201
    assert report.repositories["a-first"].links_removed == 1 and report.repositories["app"].links_removed == 0
    pull_all(client, "app", {"tag": "1.0", "body": body, "config": descriptor(OCI_CONFIG, config)["digest"],
                             "layers": [descriptor(OCI_LAYER_GZIP, layer)["digest"]]})
    assert_manifests_complete(reg, "app")


# -- runs -----------------------------------------------------------------------------------------------

def test_a_run_failing_before_a_delete_leaves_everything_and_the_next_run_finishes(client, reg, tmp_path):
    keep = make_image(client, "app", layers=(b"kept",), tag="1.0")
    gone = make_image(client, "app", layers=(b"gone",), tag="2.0")
    client.delete(f"/v2/app/manifests/{gone['manifest']}")
    cutoff_now()
    armed = tmp_path / "failpoints.json"
    armed.write_text(json.dumps({"gc.before-delete": "error"}))
    state = GcState(reg.index.client, reg.index.keys)
    failpoints.configure(str(armed))
    try:
        with pytest.raises(OSError, match="failpoint gc.before-delete"):
            run_gc(reg.storage, state, 0)
    finally:
        failpoints.configure("")
    assert linked(reg, "app", gone["config"])  # the first take failed before its delete: nothing gone
    assert not reg.storage.blobs.taken_pending() and not state.running()
    report = run_gc(reg.storage, state, 0)  # the blob's lease was released: nothing waits
    assert (report.links_removed, report.blobs_deleted, report.recovered) == (2, 3, 0)
    pull_all(client, "app", keep)
    assert check(reg.storage, reg.index).findings == []


def s3_toml(settings, path, extra: str = ""):
    """The configuration file of this test's registry on S3 (the CLI needs [storage.s3])."""
    lines = ["[storage]", 'driver = "s3"', f'root = "{settings.storage.root}"', "", "[storage.s3]"]
    for key, value in settings.storage.s3.items():
        lines.append(f"{key} = " + (("true" if value else "false") if isinstance(value, bool)
                                    else str(value) if isinstance(value, int) else f'"{value}"'))
    lines += ["", "[redis]", f'url = "{settings.redis.url}"', f'key_prefix = "{settings.redis.key_prefix}"']
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)


def test_the_gc_command_runs_on_s3(client, reg, settings, tmp_path):
    keep = make_image(client, "app", layers=(b"kept",), tag="1.0")
    gone = make_image(client, "app", layers=(b"gone",), tag="2.0")
    client.delete(f"/v2/app/manifests/{gone['manifest']}")
    cutoff_now()
    args = ["gc", "--config", s3_toml(settings, tmp_path / "registry.toml"), "--grace-period", "0"]
    dry = CliRunner().invoke(main, [*args, "--dry-run"], env={"REGISTRY_EXT_CONFIG": None})
    assert dry.exit_code == 0, dry.output
    lines, summary = dry.output.split("\n{", 1)
    size = {d: reg.storage.blobs.size(parse_digest(d)) for d in (gone["config"], gone["layers"][0])}
    assert sorted(lines.splitlines()) == sorted(
        [f"would remove link app {d} {n}" for d, n in size.items()]
        + [f"would remove blob {d} {n}" for d, n in size.items()]
        + [f"would remove blob {gone['manifest']} {gone['size']}"])
    assert json.loads("{" + summary)["dry_run"] is True and blob_exists(reg, gone["config"])
    out = CliRunner().invoke(main, args, env={"REGISTRY_EXT_CONFIG": None})
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["blobs_deleted"], report["links_removed"]) == (3, 2)
    assert not any(blob_exists(reg, d) for d in (*size, gone["manifest"]))
    pull_all(client, "app", keep)
    assert check(reg.storage, reg.index).findings == []
