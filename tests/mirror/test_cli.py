"""The CLI against fake remotes: exit codes for partial results and bad input, never a traceback."""
from __future__ import annotations

import json

from click.testing import CliRunner

from tests.support.fake_remote import FakeRemote
from registry_ext.cli import main

D1 = f"sha256:{'1' * 64}"


def registry(method, path, headers):
    if path.startswith("/v2/app/tags/list"):
        return 200, {"Link": '</v2/app/tags/list?n=10000>; rel="next"'}, {"name": "app", "tags": ["v1"]}
    return 200, {"Docker-Content-Digest": D1, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}, b""


def invoke(*args: str):
    return CliRunner().invoke(main, ["mirror-diff", *args])


def test_partial_is_exit_2_and_labelled():
    with FakeRemote(registry) as fake:
        result = invoke(fake.url, fake.url, "--repo", "app", "--format", "json")
    assert result.exit_code == 2
    doc = json.loads(result.output)
    assert doc["status"] == "error" and doc["repositories"][0]["status"] == "partial"
    assert doc["repositories"][0]["partial"] == [f"{s}: Link loops back to /v2/app/tags/list?n=10000; listing "
                                                 "stopped" for s in "AB"]


def test_bad_input_exits_2_with_a_message(tmp_path):
    for args, message in (
        (["--repo", "../x"], "not a valid repository name"),
        ([], "give --repo NAME"),
        (["--repo", "app", "--all"], "give --repo NAME"),
        (["--repo", "app", "--output", str(tmp_path / "no" / "such" / "dir.html"), "--retries", "0"],
         "cannot write"),
    ):
        result = invoke("http://127.0.0.1:9", "http://127.0.0.1:9", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    result = invoke("ftp://x", "http://127.0.0.1:9", "--repo", "app")
    assert result.exit_code == 2 and "not a registry address" in result.output
