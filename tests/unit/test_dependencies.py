"""Every third-party module the package imports is declared in setup.cfg's install_requires.

Round 1 shipped `requests` only in the test extra and the README's run command crashed on a fresh
machine; `.ci/run` proves the run command, and this test names the missing declaration at once, for
imports on paths the run command does not reach (the S3 driver, mirror-diff, the feed waiter).
"""
from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def _declared() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPOSITORY / "setup.cfg")
    lines = cfg["options"]["install_requires"].strip().splitlines()
    return {_normal(re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0]) for line in lines if line.strip()}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level() -> set[str]:
    names: set[str] = set()
    for path in (REPOSITORY / "registry_ext").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"registry_ext", "__future__"}


def test_every_imported_distribution_is_declared():
    owners = importlib.metadata.packages_distributions()
    imported = _imported_top_level()
    unknown = sorted(name for name in imported if name not in owners)
    assert not unknown, f"imported, but no installed distribution provides them: {unknown}"
    needed = {name: {_normal(d) for d in owners[name]} for name in imported}
    missing = sorted(name for name, dists in needed.items() if not dists & _declared())
    assert not missing, f"imported at run time, not in install_requires: {missing}"


def test_the_check_sees_what_it_must():
    # The walk finds the imports the round-1 crash was about, so an empty answer above means something.
    assert {"requests", "flask", "redis", "orjson"} <= _imported_top_level()


def test_every_folder_of_python_modules_is_a_package_that_gets_installed():
    """setup.cfg's ``packages = find:`` installs only folders with an ``__init__.py``: without one, the
    editable install of the tests still imports the folder (a namespace package) while ``pip install .``
    (the README's run command) leaves it out, and the server dies on its first import of it."""
    missing = sorted(str(folder.relative_to(REPOSITORY)) for folder in (REPOSITORY / "registry_ext").rglob("*")
                     if folder.is_dir() and any(folder.glob("*.py")) and not (folder / "__init__.py").exists())
    assert missing == []
