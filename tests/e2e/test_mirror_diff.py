"""mirror-diff against live servers: two `registry-ext serve` instances and Debian's docker-registry.

One scenario (e2e_mirror_seed.py) seeds a difference of every kind; the JSON
report must equal the expectation exactly, through the CLI (remote and
`local` sides), through the API, and against docker-registry (the plain
fallback), where the request count is checked against the naive method.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from bench.peer import start_peer
from tests.support.e2e_mirror_seed import expected, seed_pair, strip
from tests.support.e2e_server import RegistryServer, cli_path

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pair(tmp_path_factory, redis_server):
    """Two live instances (A, B) sharing the session redis-server under different prefixes, seeded."""
    servers = [RegistryServer(tmp_path_factory.mktemp(f"mirror{i}"), redis_url=redis_server,
                              key_prefix=f"mirror{i}x{os.getpid()}") for i in "ab"]
    try:
        for server in servers:
            server.start()
        digests = seed_pair(servers[0].url, servers[1].url)
        yield servers[0], servers[1], digests
    finally:
        for server in servers:
            server.close()


@pytest.fixture(scope="module")
def peer(pair, tmp_path_factory):
    """Debian's docker-registry seeded like B (re-pushing A's side is idempotent)."""
    server = start_peer(data_dir=str(tmp_path_factory.mktemp("peer")))
    try:
        assert seed_pair(pair[0].url, server.url) == pair[2]
        yield server
    finally:
        server.stop()


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([cli_path(), "mirror-diff", *args], capture_output=True, text=True, timeout=120,
                          input=stdin)


def test_two_instances_exact_report(pair):
    a, b, d = pair
    out = run(a.url, b.url, "--repo", "app", "--repo", "extra", "--untagged", "--format", "json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert strip(report) == expected(d, untagged=True)
    assert report["status"] == "differs" and report["exit_code"] == 1
    app = report["repositories"][0]
    assert app["methods"] == {"a": "enriched", "b": "enriched"}
    # one tags/list page + one _regext/manifests page each; B also HEADs the orphan's subject
    assert app["requests"] == {"a": 2, "b": 3}
    assert report["counts"] == {"repositories": 2, "only_a": 2, "only_b": 1, "changed": 3, "identical": 1,
                                "signatures": 2, "untagged_only_a": 2, "untagged_only_b": 1, "missing": 1,
                                "errors": 0, "partial": 0}


def test_local_side_gives_the_same_report(pair, redis_server):
    a, b, d = pair
    out = run("local", b.url, "--data-dir", str(a.data_dir), "--redis-url", redis_server, "--key-prefix",
              a.key_prefix, "--repo", "app", "--repo", "extra", "--untagged", "--format", "json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert strip(report) == expected(d, untagged=True)
    assert report["repositories"][0]["methods"]["a"] == "local"


def test_exit_codes_and_formats(pair, tmp_path):
    a, b, _d = pair
    same = run(a.url, a.url, "--repo", "app")
    assert same.returncode == 0 and "IDENTICAL: 1 repositories" in same.stdout
    text = run(a.url, b.url, "--repo", "app")
    assert text.returncode == 1
    assert "app: DIFFERS" in text.stdout and "changed" in text.stdout and "docker-vs-oci" in text.stdout
    html_file = tmp_path / "report.html"
    out = run(a.url, b.url, "--repo", "app", "--format", "html", "--output", str(html_file))
    page = html_file.read_text()
    assert out.returncode == 1 and out.stdout == ""
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "index-vs-platform" in page
    assert "<script" not in page and "http" not in page.replace(a.url, "").replace(b.url, "")
    down = run(a.url, "http://127.0.0.1:9", "--repo", "app", "--retries", "0")
    assert down.returncode == 2 and "cannot connect" in down.stdout and "Traceback" not in down.stderr
    bar = run(a.url, b.url, "--repo", "app", "--progress")
    assert bar.returncode == 1 and "1/1 app" in bar.stderr and "[####" in bar.stderr
    assert "1/1" not in run(a.url, b.url, "--repo", "app").stderr  # not a TTY: no bar by default
    usage = run(a.url, b.url)
    assert usage.returncode == 2 and "--repo" in usage.stderr
    everything = run(a.url, b.url, "--all", "--format", "json")
    assert everything.returncode == 1
    assert [r["repo_a"] for r in json.loads(everything.stdout)["repositories"]] == ["app", "extra"]


def test_api_against_a_configured_remote(pair, redis_server):
    from registry_ext.app import create_app
    from registry_ext.config import load_settings

    a, b, d = pair
    settings = load_settings(data={"storage": {"root": str(a.data_dir)},
                                   "redis": {"url": redis_server, "key_prefix": a.key_prefix},
                                   "mirror": {"remotes": {"b": {"url": b.url, "timeout": 20}}}}, environ={})
    client = create_app(settings).test_client()
    resp = client.get("/v2/app/_regext/mirror-diff?remote=b&untagged=true")
    assert resp.status_code == 200
    assert strip(resp.json) == expected(d, untagged=True)[:1]
    assert resp.json["a"] == "local" and resp.json["b"] == "b"
    again = client.get("/v2/app/_regext/mirror-diff?remote=b&untagged=true")
    assert again.get_data() == resp.get_data()  # cached
    unknown = client.get(f"/v2/app/_regext/mirror-diff?remote={b.url}")
    assert unknown.status_code == 400 and unknown.json["errors"][0]["code"] == "UNSUPPORTED"
    assert unknown.json["errors"][0]["detail"] == {"parameter": "remote"}


def test_docker_registry_fallback(pair, peer):
    a, _b, d = pair
    out = run(a.url, peer.url, "--repo", "app", "--repo", "extra", "--untagged", "--format", "json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert strip(report) == expected(d, untagged=False)  # docker-registry cannot list untagged manifests
    app = report["repositories"][0]
    assert app["methods"] == {"a": "enriched", "b": "plain"}
    # naive: 1 tags/list + 7 HEADs; plus one HEAD for the signature whose subject is untagged there,
    # plus the 404 of _regext/manifests (asked because of --untagged)
    assert app["requests"]["b"] == 1 + 7 + 1 + 1
    out = run(a.url, peer.url, "--repo", "app", "--format", "json")
    assert json.loads(out.stdout)["repositories"][0]["requests"]["b"] == 1 + 7 + 1
    missing = run(peer.url, a.url, "--repo", "nothing-here", "--format", "json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["repositories"][0]["missing"] == "both"
