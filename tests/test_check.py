"""`check` finds drift between storage and the index, and `--repair` fixes it."""
import json
import os
import time

import pytest
from click.testing import CliRunner

from registry_ext.cli import main

from registry_ext.oci.digest import parse_digest
from registry_ext.services.check import check
from tests.support.oci_client import make_image


@pytest.fixture
def reg(app):
    return app.extensions["registry"]


def kinds(report):
    return sorted((f.kind, f.subject) for f in report.findings)


def test_a_healthy_registry_has_no_findings(client, reg):
    make_image(client, "app", tag="1.0")
    make_image(client, "app", layers=(b"x",), tag="2.0")
    report = check(reg.storage, reg.index)
    assert report.repositories == 1 and report.findings == []


def test_index_drift_is_found_and_repaired(client, reg, redis_client, settings):
    make_image(client, "app", tag="1.0")
    redis_client.hdel(f"{settings.redis.key_prefix}:repo:{{app}}:tags", "1.0")
    assert client.get("/v2/app/_regext/tags").json["tags"] == []
    assert kinds(check(reg.storage, reg.index)) == [("index-drift", "app")]
    assert client.get("/v2/app/_regext/tags").json["tags"] == []  # report only
    assert kinds(check(reg.storage, reg.index, repair=True)) == [("index-drift", "app")]
    assert [t["name"] for t in client.get("/v2/app/_regext/tags").json["tags"]] == ["1.0"]
    assert check(reg.storage, reg.index).findings == []


def test_derived_set_drift_is_found(client, reg, redis_client, settings):
    make_image(client, "app", tag="1.0")
    redis_client.delete(f"{settings.redis.key_prefix}:repo:{{app}}:tags:semver")
    assert kinds(check(reg.storage, reg.index, repair=True)) == [("index-drift", "app")]
    assert client.get("/v2/app/_regext/tags?sort=semver").json["tags"][0]["name"] == "1.0"


def test_missing_manifest_bytes_and_dangling_tags_are_removed(client, reg):
    image = make_image(client, "app", tag="1.0")
    os.unlink(reg.storage.layout.blob(parse_digest(image["manifest"])))
    report = check(reg.storage, reg.index)
    assert kinds(report) == [("dangling-tag", "1.0"), ("index-drift", "app"),
                             ("missing-manifest-bytes", image["manifest"])]
    assert all(not f.repaired for f in report.findings)
    check(reg.storage, reg.index, repair=True)
    assert client.get("/v2/app/tags/list").json["tags"] == []
    assert client.get("/v2/app/manifests/1.0").status_code == 404
    assert reg.storage.repos.history("app", "1.0")[-1].event == "deleted"
    assert check(reg.storage, reg.index).findings == []


def test_tag_pointing_at_a_missing_manifest_link(client, reg):
    image = make_image(client, "app", tag="1.0")
    reg.storage.repos.delete_manifest("app", parse_digest(image["manifest"]))
    assert ("dangling-tag", "1.0") in kinds(check(reg.storage, reg.index, repair=True))
    assert reg.storage.repos.tag("app", "1.0") is None


def test_index_orphans_stale_uploads_and_temp_files(client, reg, redis_client, settings):
    make_image(client, "app", tag="1.0")
    redis_client.zadd(f"{settings.redis.key_prefix}:repos", {"ghost": 0})
    session = client.post("/v2/app/blobs/uploads/").headers["Location"].rsplit("/", 1)[1]
    folder = reg.storage.layout.upload_dir(session)
    info = json.loads((folder / "info.json").read_bytes())
    info["started_at"] = 0
    (folder / "info.json").write_text(json.dumps(info))
    old = time.time() - 7200
    os.utime(folder, (old, old))
    temp = reg.storage.layout.tmp / "leftover"
    temp.write_bytes(b"x")
    os.utime(temp, (old, old))
    found = kinds(check(reg.storage, reg.index))
    assert found == [("index-orphan", "ghost"), ("stale-temp", "leftover"), ("stale-upload", session)]
    assert folder.exists() and temp.exists()
    check(reg.storage, reg.index, repair=True)
    assert not folder.exists() and not temp.exists()
    assert client.get("/v2/_catalog").json["repositories"] == ["app"]
    assert check(reg.storage, reg.index).findings == []


def test_a_session_whose_bytes_were_moved_into_place_is_stale(client, reg):
    """A worker killed between moving the verified bytes and removing the session leaves this."""
    session = client.post("/v2/app/blobs/uploads/").headers["Location"].rsplit("/", 1)[1]
    folder = reg.storage.layout.upload_dir(session)
    (folder / "data").unlink()
    old = time.time() - 120
    os.utime(folder, (old, old))
    assert kinds(check(reg.storage, reg.index)) == [("stale-upload", session)]
    check(reg.storage, reg.index, repair=True)
    assert not folder.exists()


def test_check_command_exit_codes(client, reg, settings, redis_client):
    make_image(client, "app", tag="1.0")
    args = ["check", "--data-dir", settings.storage.root, "--redis-url", settings.redis.url,
            "--key-prefix", settings.redis.key_prefix]
    assert CliRunner().invoke(main, args).exit_code == 0
    redis_client.delete(f"{settings.redis.key_prefix}:repo:{{app}}:tags")
    found = CliRunner().invoke(main, args)
    assert found.exit_code == 1 and json.loads(found.output)["findings"][0]["kind"] == "index-drift"
    repaired = CliRunner().invoke(main, args + ["--repair"])
    assert repaired.exit_code == 0 and json.loads(repaired.output)["findings"][0]["repaired"] is True
    assert CliRunner().invoke(main, args).exit_code == 0


def test_torn_history_lines_anywhere_are_reported_and_repaired(client, reg):
    """Issue #10 item 2: before appends were truncated back, a short write tore a line and the next
    event was written onto it; a line may also be damaged in the middle of a segment."""
    images = [make_image(client, "app", layers=(bytes([i]),), tag="t") for i in range(4)]
    path = reg.storage.layout.history_segment("app", "t", 0)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:45] + lines[2]  # event 1 torn, event 2 written onto its end
    del lines[2]
    lines[0] = b'{"digest":"sha256:0' + b"\x00" * 9  # event 0 damaged
    path.write_bytes(b"\n".join(lines) + b'{"digest":"sha256:')  # and a torn tail after event 3
    served = client.get("/v2/app/_oci/tag-history/t").json["manifests"]
    assert [e["digest"] for e in served] == [images[3]["manifest"]]  # the history API skips what does not parse
    report = check(reg.storage, reg.index)
    assert kinds(report) == [("torn-history-line", f"t segment 0 offset {offset}")
                             for offset in sorted((0, len(lines[0]) + 1, path.stat().st_size - 18))]
    assert all(not f.repaired for f in report.findings)
    check(reg.storage, reg.index, repair=True)
    served = client.get("/v2/app/_oci/tag-history/t").json["manifests"]
    assert [e["digest"] for e in served] == [images[3]["manifest"], images[2]["manifest"]]
    assert check(reg.storage, reg.index).findings == []
