"""docs/configuration.md against the code, so that it cannot go stale again.

Checked: every `[section]` table lists exactly the keys of its dataclass in
config.py, with the right type and default; the sample file sets every key
and loads; the `check-config` sample is the command's real output; the
environment variables are config.ENV_KEYS; the command list is the CLI's;
the validation example is the real message.
"""
from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import click
from click.testing import CliRunner

from registry_ext import config, config_sections
from registry_ext.cli import main

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
TYPES = {str: "string", int: "integer", bool: "boolean", dict: "table", list: "list"}
CLEAN_ENV = dict.fromkeys((*config.ENV_KEYS, "REGISTRY_EXT_CONFIG"))


def section_tables() -> dict[str, dict[str, tuple[str, str, str]]]:
    """`### [section]` -> key -> (type, default, meaning), from the markdown tables."""
    tables: dict[str, dict[str, tuple[str, str, str]]] = {}
    for match in re.finditer(r"^### `\[(\w+)\]`\n(.*?)(?=^#)", DOC, re.S | re.M):
        rows = re.findall(r"^\| `(\w+)` \| (\w+(?: of \w+)?) \| (.+?) \| (.+) \|$", match.group(2), re.M)
        tables[match.group(1)] = {key: (kind, default, meaning) for key, kind, default, meaning in rows}
    return tables


def code_block_after(marker: str) -> str:
    start = DOC.index(marker)
    start = DOC.index("```", start)
    start = DOC.index("\n", start) + 1
    return DOC[start:DOC.index("```", start)]


def rendered(value) -> str:
    return json.dumps(value) if not isinstance(value, dict) else "{}"


def test_every_key_is_documented_with_its_type_and_default():
    tables = section_tables()
    sections = config._sections()
    assert list(tables) == list(sections)
    for section, cls in sections.items():
        fields = {f.name: config._default(f) for f in dataclasses.fields(cls)}
        assert list(tables[section]) == list(fields), section
        for key, default in fields.items():
            kind, documented, _meaning = tables[section][key]
            assert kind.split(" ")[0] == TYPES[type(default)], (section, key)
            assert documented.split(" ")[0] == f"`{rendered(default)}`", (section, key, documented)


def test_every_remote_key_is_documented():
    remotes_meaning = section_tables()["mirror"]["remotes"][2]
    for key in config_sections.REMOTE_KEYS:
        assert f"`{key}`" in remotes_meaning, key


def test_the_sample_file_sets_every_key_and_loads(tmp_path):
    text = code_block_after("## The configuration file")
    sample = tomllib.loads(text)
    sections = config._sections()
    assert list(sample) == list(sections)
    for section, cls in sections.items():
        assert set(sample[section]) == {f.name for f in dataclasses.fields(cls)}, section
    path = tmp_path / "registry.toml"
    path.write_text(text)
    assert config.load_settings(path, environ={}).server.host == "0.0.0.0"


def test_check_config_sample_is_the_real_output():
    documented = code_block_after("### `registry-ext check-config`").split("$ registry-ext check-config\n", 1)[1]
    documented = documented.split("\n$ ", 1)[0] + "\n"
    result = CliRunner().invoke(main, ["check-config"], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert documented == result.output


def test_environment_variables_are_the_ones_read():
    table = re.search(r"\| Variable \| Sets \|\n\| --- \| --- \|\n((?:\|.*\n)+)", DOC).group(1)
    documented = re.findall(r"^\| `(REGISTRY_EXT_\w+)` \|", table, re.M)
    assert documented == ["REGISTRY_EXT_CONFIG", *config.ENV_KEYS]
    assert "an optional TOML file, five environment variables" in DOC and len(documented) == 5


def test_the_command_list_is_the_cli():
    listed = re.search(r"`registry-ext` has (\w+) commands: ([\w, -]+?) and ([\w-]+)\n", DOC)
    names = [n.strip() for n in listed.group(2).split(",")] + [listed.group(3)]
    commands = main.list_commands(click.Context(main))  # mirror-diff is loaded only when asked for
    assert sorted(names) == commands and all(main.get_command(click.Context(main), n) for n in commands)
    assert listed.group(1) == "ten" and len(commands) == 10
    for name in commands:
        assert f"### `registry-ext {name}`" in DOC, name
    contents = re.search(r"\[Commands\]\(#commands\): (.*)", DOC).group(1)
    assert re.findall(r"`([\w-]+)`", contents) == names
    help_text = CliRunner().invoke(main, ["--help"]).output
    assert re.findall(r"^  ([\w-]+)  ", help_text.split("Commands:", 1)[1], re.M) == commands


def test_the_validation_example_is_the_real_message(tmp_path):
    block = code_block_after("## Validation errors")
    bad = tmp_path / "bad.toml"
    bad.write_text(block.split("$ cat bad.toml\n", 1)[1].split("$ ", 1)[0])
    result = CliRunner().invoke(main, ["check-config", "--config", str(bad)], env=CLEAN_ENV)
    expected = block.split("$ registry-ext check-config --config bad.toml\n", 1)[1].split("\n", 1)[0]
    assert result.exit_code == 2 and result.output == expected + "\n"


# The input behind each message of the documented list, in its order.
MISTAKES = [
    ("bad2.toml", "[authentication]\nx = 1\n"),
    ("bad5.toml", "workers = 2\n[server]\n"),
    ("/nonexistent.toml", None),
    ("b.toml", "[server]\nport = 0\n"),
    ("b.toml", "[server]\nworkers = 0\n"),
    ("b.toml", "[server]\nworkers = 1.5\n"),
    ("b.toml", "[storage]\ndelete_enabled = 1\n"),
    ("b.toml", "[limits]\npage_max = 0\n"),
    ("b.toml", '[redis]\nurl = "http://x"\n'),
    ("b.toml", '[redis]\nurl = "unix://data/redis.sock"\n'),
    ("b.toml", '[redis]\nkey_prefix = "a:b"\n'),
    ("b.toml", "[server]\ntrusted_proxies = 11\n"),
    ("b.toml", '[server]\nx_accel_prefix = "x"\n'),
    ("b.toml", '[server]\ndocs_url = "x"\n'),
    ("b.toml", '[auth]\nscheme = "x"\n'),
    ("b.toml", '[auth]\nscheme = "basic"\n'),
    ("b.toml", '[auth]\nrules = [' + '{ repository = "a", who = ["*"], actions = ["pull"] }, ' * 2
     + '{ repository = "a", who = ["*"], actions = ["read"] }]\n'),
    ("b.toml", '[auth]\nrules = [{ repository = "a", who = ["group:ops"], actions = ["pull"] }]\n'),
    ("b.toml", '[mirror]\nremotes = { up = { url = "ftp://x" } }\n'),
    ("b.toml", '[mirror]\nremotes = { up = { url = "http://x", realm = "x" } }\n'),
    ("b.toml", "[feed]\nretention_events = 5\n"),
    ("b.toml", '[feed]\nwait_offload = "x"\n'),
    ("b.toml", '[feed]\nwaiter_listen = "nowhere"\n'),
    ("b.toml", '[webhooks.endpoints.ci]\nurl = "ftp://x"\n'),
    ("b.toml", '[webhooks.endpoints.ci]\nurl = "http://x"\nretries = 3\n'),
    ("b.toml", '[[immutable_tags.rules]]\ntags = "(a"\n'),
    ("b.toml", '[[retention.rules]]\nkeep_tags = "^latest$"\n'),
    ("b.toml", '[[retention.rules]]\nkeep_newest = 3\nunpulled_for = "3w"\n'),
]


def test_the_documented_validation_messages_are_the_real_ones(tmp_path, monkeypatch):
    documented = [re.sub(r" {3,}\(.*\)$", "", line)
                  for line in code_block_after("Other messages, one per kind of mistake").splitlines()]
    monkeypatch.chdir(tmp_path)
    produced = []
    for name, text in MISTAKES:
        if text is not None:
            Path(name).write_text(text)
        result = CliRunner().invoke(main, ["check-config", "--config", name], env=CLEAN_ENV)
        assert result.exit_code == 2, (name, text, result.output)
        produced.append(result.output.rstrip("\n").removesuffix("; fix the configuration or the option"))
    assert produced == documented
