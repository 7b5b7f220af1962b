"""Every atheris harness in fuzz/ runs a bounded number of inputs and exits cleanly.

Each harness runs as its own process (libFuzzer owns the process), with
its dictionary and seed corpus when it has them, new inputs going to a
temporary folder so the shipped corpus stays as it is. A crash, an
unexpected exception or a timeout fails the test with libFuzzer's output.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
HARNESSES = sorted(p.stem for p in FUZZ.glob("*.py"))
RUNS = {"query": 10000}  # a Flask request context per input: ~1,700 inputs/s
DEFAULT_RUNS = 20000


def command(harness: str, work: Path, runs: int) -> list[str]:
    argv = [sys.executable, str(FUZZ / f"{harness}.py"), f"-runs={runs}", "-seed=1", "-timeout=10",
            f"-artifact_prefix={work}/"]
    if (FUZZ / f"{harness}.dict").exists():
        argv.append(f"-dict={FUZZ / f'{harness}.dict'}")
    corpus = work / "corpus"
    corpus.mkdir()
    argv.append(str(corpus))
    if (FUZZ / "corpus" / harness).is_dir():
        argv.append(str(FUZZ / "corpus" / harness))
    return argv


def test_every_harness_is_tested():
    assert set(HARNESSES) >= {"manifest", "reference", "content_range", "query"}, HARNESSES


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_runs_clean(harness, tmp_path):
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("atheris is not installed: pip install -e '.[test]'")
    runs = RUNS.get(harness, DEFAULT_RUNS)
    proc = subprocess.run(command(harness, tmp_path, runs), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{harness} failed ({proc.returncode}):\n{output[-6000:]}"
    assert f"Done {runs} runs" in output, output[-3000:]
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))]
    assert not crashes, crashes
    done = re.search(r"DONE\s+cov: (\d+).*exec/s: (\d+)", output)
    print(f"{harness}: {runs} runs, cov {done and done.group(1)}, exec/s {done and done.group(2)}")
    shutil.rmtree(tmp_path / "corpus", ignore_errors=True)
