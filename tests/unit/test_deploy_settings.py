"""Deployment settings: the new config keys, the gunicorn settings shared by `registry-ext serve`
and deploy/gunicorn.conf.py, and the metrics folder the gunicorn master prepares."""
from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from registry_ext import gunicorn_setup, metrics
from registry_ext.config import ConfigError, load_settings
from registry_ext.storage import marker
from registry_ext.storage.layout import Layout

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "gunicorn.conf.py"


def test_deployment_keys_default_to_a_plain_server():
    settings = load_settings(environ={})
    assert settings.server.x_accel_prefix == "" and settings.server.trusted_proxies == 0
    assert settings.metrics.enabled is True and settings.metrics.dir == ""


@pytest.mark.parametrize("data, message", [
    ({"server": {"x_accel_prefix": "_blobs"}}, "server.x_accel_prefix"),
    ({"server": {"x_accel_prefix": "/_blobs/"}}, "server.x_accel_prefix"),
    ({"server": {"x_accel_prefix": "/a/../b"}}, "server.x_accel_prefix"),
    ({"server": {"x_accel_prefix": "/a b"}}, "server.x_accel_prefix"),
    ({"server": {"trusted_proxies": -1}}, "server.trusted_proxies"),
    ({"server": {"trusted_proxies": 11}}, "server.trusted_proxies"),
    ({"metrics": {"enabled": "sometimes"}}, "expected true or false"),
    ({"metrics": {"path": "/x"}}, "unknown key metrics.path"),
])
def test_bad_deployment_keys_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(data=data, environ={})


def test_good_deployment_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[server]\nx_accel_prefix = "/internal/blobs"\ntrusted_proxies = 2\n'
                    '[metrics]\nenabled = false\ndir = "/run/registry-ext/metrics"\n')
    settings = load_settings(path, environ={})
    assert settings.server.x_accel_prefix == "/internal/blobs" and settings.server.trusted_proxies == 2
    assert settings.metrics.enabled is False and settings.metrics.dir == "/run/registry-ext/metrics"


def test_the_gunicorn_config_file_runs_what_serve_runs(tmp_path, monkeypatch):
    config = tmp_path / "r.toml"
    config.write_text('[server]\nhost = "127.0.0.2"\nport = 5123\nworkers = 3\nthreads = 9\ntimeout = 77\n')
    monkeypatch.setenv("REGISTRY_EXT_CONFIG", str(config))
    conf = runpy.run_path(str(CONF))
    expected = gunicorn_setup.options(load_settings(config, environ={}))
    for key, value in expected.items():
        assert conf[key] == value, key
    assert conf["bind"] == "127.0.0.2:5123" and (conf["workers"], conf["threads"]) == (3, 9)
    assert conf["preload_app"] is False  # workers build the app (and their metrics) after fork
    assert "pid=%(p)s" in conf["access_log_format"] and 'request="%(r)s"' in conf["access_log_format"]


def test_gunicorn_reads_the_config_file(tmp_path):
    config = tmp_path / "r.toml"
    root = tmp_path / "data"
    root.mkdir()
    marker.write(Layout(root))  # an existing store: the app starts without asking the (unreachable) index
    config.write_text(f'[server]\nport = 5124\nworkers = 2\nthreads = 6\n[redis]\nurl = "redis://127.0.0.1:1/0"\n'
                      f'[storage]\nroot = "{root}"\n')
    env = dict(os.environ, REGISTRY_EXT_CONFIG=str(config))
    out = subprocess.run([str(Path(sys.executable).parent / "gunicorn"), "-c", str(CONF), "--print-config",
                          "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = {key.strip(): value.strip() for key, _, value in
               (line.partition(" = ") for line in out.stdout.splitlines() if " = " in line)}
    assert printed["worker_class"] == "gthread" and printed["threads"] == "6" and printed["workers"] == "2"
    assert printed["bind"] == "['127.0.0.1:5124']" and printed["preload_app"] == "False"


def test_master_prepares_and_cleans_the_metrics_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.ENV, "")  # records the variable's state, restored after the test
    monkeypatch.delenv(metrics.ENV)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("not ours")
    gunicorn_setup.start_metrics(load_settings(data={"metrics": {"dir": str(folder)}}, environ={}))
    assert os.environ[metrics.ENV] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    gunicorn_setup.stop_metrics()
    assert folder.exists()  # a configured folder stays

    monkeypatch.delenv(metrics.ENV)
    gunicorn_setup.start_metrics(load_settings(environ={}))  # metrics.dir empty: a private folder
    private = Path(os.environ[metrics.ENV])
    assert private.is_dir() and private.name.startswith("registry-ext-metrics-")
    gunicorn_setup.stop_metrics()
    assert not private.exists()

    monkeypatch.delenv(metrics.ENV)
    gunicorn_setup.start_metrics(load_settings(data={"metrics": {"enabled": False}}, environ={}))
    assert metrics.ENV not in os.environ
    # (prometheus_client would read the variable at its first import: it must not leak to other tests)


def test_stored_files_are_readable_by_the_nginx_user(tmp_path):
    from registry_ext.storage.atomic import file_mode, write_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    write_atomic(tmp_path / "blob", b"x", tmp_path / "tmp")  # mkstemp alone would give 0600
    assert (tmp_path / "blob").stat().st_mode & 0o777 == file_mode() == 0o666 & ~mask
