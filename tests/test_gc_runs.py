"""Running garbage collection: the `registry-ext gc` command, a run killed half-way, the lease, the
scheduler inside `serve`, and the metrics (docs/gc.md)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from registry_ext import failpoints
from registry_ext.cli import main
from registry_ext.config import GcSettings
from registry_ext.index.gc_state import GcState
from registry_ext.oci.digest import parse_digest
from registry_ext.services.check import check
from registry_ext.services.gc_schedule import Housekeeping, run_gc
from tests.support.oci_client import make_image, tag_list
from tests.test_gc import age_all, blob_exists, pull_all


@pytest.fixture
def reg(app):
    return app.extensions["registry"]


def deleted_and_kept(client) -> tuple[dict, dict]:
    keep = make_image(client, "app", layers=(b"kept",), tag="1.0")
    gone = make_image(client, "app", layers=(b"gone",), tag="2.0")
    assert client.delete(f"/v2/app/manifests/{gone['manifest']}").status_code == 202
    return keep, gone


def cli_args(settings) -> list[str]:
    return ["--data-dir", settings.storage.root, "--redis-url", settings.redis.url,
            "--key-prefix", settings.redis.key_prefix]


def quarantined(reg) -> list[str]:
    root = reg.storage.layout.quarantine
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _dirs, files in os.walk(root) for f in files)


def test_dry_run_prints_what_would_go_with_sizes_and_changes_nothing(client, reg, settings):
    keep, gone = deleted_and_kept(client)
    age_all(reg)
    out = CliRunner().invoke(main, ["gc", "--dry-run", "--grace-period", "0", *cli_args(settings)])
    assert out.exit_code == 0, out.output
    lines, summary = out.output.split("\n{", 1)
    size = {d: reg.storage.blobs.size(parse_digest(d)) for d in (gone["config"], gone["layers"][0])}
    assert sorted(lines.splitlines()) == sorted(
        [f"would remove link app {d} {n}" for d, n in size.items()]
        + [f"would remove blob {d} {n}" for d, n in size.items()]
        + [f"would remove blob {gone['manifest']} {gone['size']}"])
    report = json.loads("{" + summary)
    assert report["dry_run"] is True and report["bytes_freed"] == sum(size.values()) + gone["size"]
    assert report["repositories"] == {"app": {"links_removed": 2, "bytes_freed": sum(size.values()),
                                              "untagged_manifests": 0}}
    assert all(blob_exists(reg, d) for d in size) and reg.storage.repos.has_blob("app", parse_digest(gone["config"]))


def test_gc_command_reports_bytes_freed_per_repository_and_check_stays_clean(client, reg, settings):
    keep, gone = deleted_and_kept(client)
    age_all(reg)
    out = CliRunner().invoke(main, ["gc", "--grace-period", "0", *cli_args(settings)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["blobs_deleted"], report["links_removed"]) == (3, 2)
    assert report["repositories"]["app"]["bytes_freed"] == report["bytes_freed"] - gone["size"]
    pull_all(client, "app", keep)
    assert check(reg.storage, reg.index).findings == []
    assert [t["name"] for t in client.get("/v2/app/_regext/tags").json["tags"]] == ["1.0"]


def test_a_run_killed_half_way_loses_nothing_and_the_next_run_finishes(client, reg, settings, tmp_path):
    keep, gone = deleted_and_kept(client)
    age_all(reg)
    armed = tmp_path / "failpoints.json"
    armed.write_text(json.dumps({"gc.after-take": "kill"}))
    config = tmp_path / "gc.toml"
    config.write_text(f'[storage]\nroot = "{settings.storage.root}"\n'
                      f'[redis]\nurl = "{settings.redis.url}"\nkey_prefix = "{settings.redis.key_prefix}"\n'
                      f'[gc]\ngrace_period_seconds = 0\nlock_ttl_seconds = 1\n'
                      f'[testing]\nfailpoints_file = "{armed}"\n')
    command = [sys.executable, "-m", "registry_ext.cli", "gc", "--config", str(config)]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert len(quarantined(reg)) == 1  # one file taken out of place, not yet decided on
    pull_all(client, "app", keep)
    assert check(reg.storage, reg.index).findings == []
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)  # waits out the lease
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["recovered"] == 1 and report["blobs_deleted"] == 3
    assert quarantined(reg) == [] and not reg.storage.blobs.taken_pending()  # no folders left either
    assert not any(blob_exists(reg, d) for d in (gone["config"], gone["layers"][0], gone["manifest"]))
    pull_all(client, "app", keep)
    assert check(reg.storage, reg.index).findings == []


def test_one_run_at_a_time(client, reg):
    _keep, gone = deleted_and_kept(client)
    age_all(reg)
    state = GcState(reg.index.client, reg.index.keys)
    with state.hold(0) as lease:
        assert lease is not None and state.running()
        assert run_gc(reg.storage, state, 0) is None  # another holder: nothing done
        assert blob_exists(reg, gone["config"]) and blob_exists(reg, gone["manifest"])
    report = run_gc(reg.storage, state, 0)
    assert report is not None and report.blobs_deleted == 3 and not state.running()
    assert state.stats()["runs"] == 1 and state.stats()["bytes_freed"] == report.bytes_freed


def test_the_scheduler_collects_when_due_and_records_it(client, reg):
    keep, gone = deleted_and_kept(client)
    age_all(reg)
    state = GcState(reg.index.client, reg.index.keys)
    house = Housekeeping(reg.storage, state, GcSettings(enabled=True, interval_seconds=3600, grace_period_seconds=0))
    house.tick()
    house.join(30)
    assert state.stats()["runs"] == 1 and not blob_exists(reg, gone["config"])
    house._next = 0  # the next tick: swept uploads, gc not due for an hour
    house.tick()
    house.join(30)
    assert state.stats()["runs"] == 1
    pull_all(client, "app", keep)


def test_the_scheduler_puts_back_what_a_failed_run_left(client, reg, tmp_path):
    keep, gone = deleted_and_kept(client)
    age_all(reg)
    state = GcState(reg.index.client, reg.index.keys)
    armed = tmp_path / "failpoints.json"
    armed.write_text(json.dumps({"gc.after-take": "error"}))
    failpoints.configure(str(armed))
    try:
        with pytest.raises(OSError, match="failpoint gc.after-take"):
            run_gc(reg.storage, state, 0)
    finally:
        failpoints.configure("")
    assert len(quarantined(reg)) == 1
    house = Housekeeping(reg.storage, state, GcSettings())  # gc not enabled: leftovers are put back anyway
    house.tick()
    house.join(30)
    assert quarantined(reg) == []
    assert reg.storage.repos.has_blob("app", parse_digest(gone["config"]))  # the link it had taken
    assert state.stats()["runs"] == 0


def test_metrics_report_gc_runs(client, reg):
    deleted_and_kept(client)
    age_all(reg)
    report = run_gc(reg.storage, GcState(reg.index.client, reg.index.keys), 0)
    text = client.get("/metrics").get_data(as_text=True)
    assert "registry_gc_runs_total 1.0" in text
    assert f"registry_gc_bytes_freed_total {float(report.bytes_freed)}" in text
    assert "registry_gc_blobs_deleted_total 3.0" in text
    assert "registry_gc_links_removed_total 2.0" in text
    assert "registry_gc_running 0.0" in text


def test_gc_applies_retention_rules_first_and_collects_what_they_free(client, reg, settings, tmp_path):
    old = make_image(client, "apps/web", layers=(b"old-layer",), tag="1.0")
    new = make_image(client, "apps/web", layers=(b"new-layer",), tag="2.0")
    time.sleep(1.1)  # the untagged manifest must be older than untagged_older_than
    age_all(reg)
    config = tmp_path / "gc.toml"
    config.write_text('[[retention.rules]]\nrepositories = ["apps/**"]\nkeep_newest = 1\n'
                      'untagged_older_than = "1s"\n')
    args = ["gc", "--config", str(config), "--grace-period", "0", *cli_args(settings)]
    dry = CliRunner().invoke(main, [*args, "--dry-run"], env={"REGISTRY_EXT_CONFIG": None})
    assert dry.exit_code == 0, dry.output
    assert "delete tag      apps/web:1.0 -> " + old["manifest"] in dry.output
    assert client.get("/v2/apps/web/manifests/1.0").status_code == 200  # a dry run deletes nothing
    out = CliRunner().invoke(main, args, env={"REGISTRY_EXT_CONFIG": None})
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["blobs_deleted"] == 3  # the old manifest, its config and its layer, in the same run
    assert not any(blob_exists(reg, d) for d in (old["manifest"], old["config"], old["layers"][0]))
    assert tag_list(client, "apps/web") == ["2.0"]
    pull_all(client, "apps/web", new)
    assert check(reg.storage, reg.index).findings == []


def test_the_scheduler_runs_retention_first_under_the_gc_lease(client, reg):
    ran: list[bool] = []
    state = GcState(reg.index.client, reg.index.keys)
    house = Housekeeping(reg.storage, state, GcSettings(enabled=True, interval_seconds=3600, grace_period_seconds=0),
                         before_gc=lambda: ran.append(state.running()))
    house.tick()
    house.join(30)
    assert ran == [True] and state.stats()["runs"] == 1
