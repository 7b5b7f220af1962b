"""The README's quick start, run as written against a live `registry-ext serve`, so it cannot rot.

Every ```sh block after a ``<!-- quickstart -->`` line runs in order with
bash (``-euo pipefail``) in one scratch folder, with two changes: the
registry's address (``127.0.0.1:5000`` in the README) is the test server's,
and buildah keeps its containers storage in the scratch folder (vfs driver)
instead of /var/lib/containers. ``.venv`` there is the test interpreter's
virtualenv, as in a checkout set up with the README's commands.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
QUICKSTART = re.compile(r"^<!-- quickstart -->\n```sh\n(.*?)^```\n", re.S | re.M)
ADDRESS = "127.0.0.1:5000"


def json_documents(text: str) -> list:
    """The JSON documents printed one after the other (curl -s adds no newline)."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return docs
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)


@pytest.fixture
def scratch(tmp_path):
    for tool in ("buildah", "skopeo", "curl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (apt-get install {tool}); the README's quick start uses it")
    work = tmp_path / "quickstart"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/containers/storage"\n'
                    f'runroot = "{tmp_path}/containers/run"\n')
    return work, dict(os.environ, CONTAINERS_STORAGE_CONF=str(conf))


def run_block(block: str, registry, work: Path, env: dict) -> str:
    script = block.replace(ADDRESS, registry.host)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"README block failed ({result.returncode}):\n{script}\n--- stdout\n" \
                                   f"{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_quick_start_runs_as_written(registry, scratch):
    work, env = scratch
    blocks = QUICKSTART.findall(README)
    assert len(blocks) == 6 and all(ADDRESS in block for block in blocks)
    build, read, ask, feed, mirror_diff, oras = (run_block(block, registry, work, env) for block in blocks)

    assert build.count("Writing manifest to image destination") == 3  # the three skopeo copies
    assert '{"name":"demo/app","tags":["1.0.0","1.1.0","latest"]}' in read
    assert re.search(r"(?im)^docker-content-digest: sha256:[0-9a-f]{64}\r?$", read)
    assert (work / "app-copy" / "index.json").exists()

    (changes,) = json_documents(feed)
    assert [(e["repository"], e["tag"], e["action"]) for e in changes["events"]] == [("demo/app", "1.2.0", "pushed")]

    newest, newer, index, history = json_documents(ask)
    assert [tag["name"] for tag in newest["tags"]] == ["1.1.0", "1.0.0"]  # no `latest`
    assert [tag["name"] for tag in newer["newer"]] == ["1.1.0"] and newer["moved"] is False
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]} == \
        {"1.0.0", "1.1.0", "latest"}
    assert [(m["digest"], m["annotations"]["org.opencontainers.distribution.tag.event"])
            for m in history["manifests"]] == [(newer["digest"], "created")]

    assert "demo/app: IDENTICAL" in mirror_diff
    assert (work / "pulled" / "notes.txt").read_text() == "release notes\n"
