"""The storage root's marker (issue #10 item 5): a wrong --data-dir is refused, never "repaired".

The commands run as an operator runs them: ``check``, ``reindex`` and
``purge-uploads`` through the click CLI, ``serve`` as the real console
script (it must refuse before gunicorn starts). Every test asserts that
the live index still lists its repositories afterwards.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess

import orjson
import pytest
from click.testing import CliRunner

from registry_ext import create_app
from registry_ext.cli import main
from registry_ext.config import load_settings
from registry_ext.services.root import RootRefused
from registry_ext.storage.layout import MARKER_NAME
from tests.support.servers import free_port
from tests.support.e2e_server import cli_path
from tests.support.oci_client import make_image


def run(settings, *args, data_dir: str | None = None):
    return CliRunner().invoke(main, [*args, "--data-dir", data_dir or settings.storage.root,
                                     "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix])


def one_line(result) -> str:
    """The refusal: one line on stderr, exit status 1, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("registry-ext: error: storage root "), result.output
    return lines[0]


@pytest.fixture
def live(client, settings):
    """A registry with a repository; its listings are what a wrong root must not destroy."""
    make_image(client, "team/app", tag="1.0")
    return client


def still_listed(client) -> None:
    assert client.get("/v2/_catalog").json == {"repositories": ["team/app"]}
    assert client.get("/v2/team/app/tags/list").json["tags"] == ["1.0"]


def test_a_new_root_gets_the_marker(app, settings):
    doc = orjson.loads((app.extensions["registry"].storage.layout.root / MARKER_NAME).read_bytes())
    assert set(doc) == {"format", "layout", "created_at"}
    assert doc["format"] == "registry-ext" and doc["layout"] == 1 and isinstance(doc["created_at"], int)


@pytest.mark.parametrize("command", [["check", "--repair"], ["check"], ["reindex"], ["purge-uploads"]])
@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_admin_commands_refuse_a_wrong_root_and_never_create_it(live, settings, tmp_path, command, kind):
    wrong = tmp_path / "typo"
    if kind == "empty":
        wrong.mkdir()
    line = one_line(run(settings, *command, data_dir=str(wrong)))
    if command[0] == "purge-uploads":  # needs no index: anything that is not ours is refused
        what = "does not exist" if kind == "missing" else "holds no registry data"
        assert line == (f"registry-ext: error: storage root {wrong} {what}"
                        f": not a registry-ext storage root (`registry-ext serve` creates one)")
    else:
        assert "but the index (redis prefix" in line and "lists repositories, e.g. 'team/app'" in line
        assert "wrong storage root (--data-dir, storage.root)?" in line
    assert wrong.exists() == (kind == "empty")
    assert kind == "missing" or list(wrong.iterdir()) == []
    still_listed(live)


def test_check_with_an_empty_index_still_refuses_a_root_that_is_not_ours(settings, tmp_path):
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    (wrong / "notes.txt").write_text("not a registry")
    line = one_line(run(settings, "check", data_dir=str(wrong)))
    assert line.endswith("is not empty and holds no registry data (no registry-ext.json, repos/ or blobs/): "
                         "not a registry-ext storage root (`registry-ext serve` creates one)")
    assert sorted(p.name for p in wrong.iterdir()) == ["notes.txt"]


def test_serve_refuses_a_wrong_root_before_gunicorn_starts(live, settings, tmp_path):
    wrong = tmp_path / "typo"
    out = subprocess.run([cli_path(), "serve", "--data-dir", str(wrong), "--redis-url", settings.redis.url,
                          "--key-prefix", settings.redis.key_prefix, "--port", str(free_port()), "--workers", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # no gunicorn banner: it never started
    assert lines[0].startswith(f"registry-ext: error: storage root {wrong} does not exist, but the index")
    assert not wrong.exists()
    still_listed(live)


def test_the_app_refuses_a_wrong_root_too(live, settings, tmp_path):
    """Workers under a plain gunicorn (deploy/) build the app without `serve`'s check."""
    wrong = tmp_path / "typo"
    with pytest.raises(RootRefused, match="wrong storage root"):
        create_app(load_settings(data={"storage": {"root": str(wrong)},
                                       "redis": {"url": settings.redis.url,
                                                 "key_prefix": settings.redis.key_prefix}}, environ={}))
    assert not wrong.exists()
    still_listed(live)


def test_serve_refuses_a_folder_of_other_files(settings, tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "thesis.tex").write_text("...")
    with pytest.raises(RootRefused, match="is not empty and holds no registry data .*choose an empty or new folder"):
        create_app(load_settings(data={"storage": {"root": str(folder)}, "redis": {"url": settings.redis.url}},
                                 environ={}))
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]


def test_a_root_from_before_markers_is_adopted(live, settings, app):
    marker = app.extensions["registry"].storage.layout.root / MARKER_NAME
    marker.unlink()  # as every root written before this change
    result = run(settings, "check")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["findings"] == []
    assert orjson.loads(marker.read_bytes())["layout"] == 1
    marker.unlink()
    create_app(settings)  # the server adopts it as well
    assert marker.exists()
    still_listed(live)


def test_an_empty_skeleton_left_by_an_old_check_is_not_taken_for_data(live, settings, tmp_path):
    """Before markers, `check --repair` on a typo created these folders (and emptied the index)."""
    wrong = tmp_path / "typo"
    for folder in ("tmp", "uploads", "repos", "journal"):
        (wrong / folder).mkdir(parents=True)
    assert "lists repositories" in one_line(run(settings, "check", "--repair", data_dir=str(wrong)))
    assert not (wrong / MARKER_NAME).exists()
    still_listed(live)


@pytest.mark.parametrize("doc, message", [
    ({"format": "registry-ext", "layout": 2, "created_at": 1},
     "registry-ext.json says storage layout 2; this registry-ext reads layout 1 only (a newer version wrote it?)"),
    ({"format": "zot", "layout": 1}, "registry-ext.json names format 'zot', not 'registry-ext'"),
    ([1, 2], "registry-ext.json is unreadable"),
])
def test_a_marker_this_version_does_not_know_is_refused(live, settings, app, doc, message):
    marker = app.extensions["registry"].storage.layout.root / MARKER_NAME
    marker.write_bytes(orjson.dumps(doc))
    for command in (["check"], ["reindex"], ["purge-uploads"]):
        expected = f"registry-ext: error: storage root {settings.storage.root}: {message}"
        assert one_line(run(settings, *command)) == expected
    with pytest.raises(RootRefused, match="storage root"):
        create_app(settings)
    still_listed(live)


def test_workers_starting_together_on_a_new_root_all_start(settings, tmp_path):
    """gunicorn starts its workers at once: each builds the app and claims the same new root.

    Forked processes, as gunicorn's workers are (threads building Flask apps at once trip a CPython 3.11
    compiler bug, "AST constructor recursion depth mismatch", that real workers never meet)."""
    root = tmp_path / "fresh"
    worker_settings = load_settings(data={"storage": {"root": str(root)},
                                          "redis": {"url": settings.redis.url,
                                                    "key_prefix": settings.redis.key_prefix}}, environ={})
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(8), context.Queue()

    def start():
        barrier.wait()
        try:
            app = create_app(worker_settings)
            status = app.test_client().post("/v2/w/blobs/uploads/").status_code
            errors.put(None if status == 202 else f"upload answered {status}")  # serves at once
        except Exception as exc:  # noqa: BLE001 - reported to the parent and asserted below
            errors.put(repr(exc))

    workers = [context.Process(target=start) for _ in range(8)]
    for worker in workers:
        worker.start()
    outcomes = [errors.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(60)
    assert [o for o in outcomes if o is not None] == []
    assert [w.exitcode for w in workers] == [0] * 8
    assert orjson.loads((root / MARKER_NAME).read_bytes())["layout"] == 1
    assert os.listdir(root / "tmp") == []
