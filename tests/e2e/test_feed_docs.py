"""The 20-line checker of docs/updates.md, run as written (only the registry's URL replaced) against the
real `registry-ext serve`: it prints the events of the repositories it watches."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.e2e_feed import images, set_tag

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "updates.md"


def checker_source() -> str:
    text = DOC.read_text()
    block = re.search(r"<!-- checker -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 22, "the documented checker grew past ~20 lines"
    return block


def test_the_documented_checker_works(registry, tmp_path):
    source = checker_source()
    assert source.count('"http://localhost:5000"') == 1
    script = tmp_path / "checker.py"
    script.write_text(source.replace('"http://localhost:5000"', repr(registry.url)))
    made = images(registry.url, "team/app7", 1)
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            time.sleep(2)  # it posted its watch list and waits
            set_tag(registry.url, "team/app7", "1.0", made[0])
            line = proc.stdout.readline().strip()
            assert line == f"team/app7 1.0 pushed {made[0][1]}", (line, proc.stderr.read() if proc.poll() else "")
        finally:
            proc.kill()
