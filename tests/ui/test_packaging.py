"""`pip install .` ships every template and static file of the UI (setup.cfg package_data)."""
from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "registry_ext" / "api" / "ui"


def test_package_data_covers_every_ui_file():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    globs = [g.strip() for g in config["options.package_data"]["registry_ext.api.ui"].split(",")]
    files = [p.relative_to(UI).as_posix() for folder in ("templates", "static") for p in (UI / folder).iterdir()]
    assert len(files) >= 10
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
