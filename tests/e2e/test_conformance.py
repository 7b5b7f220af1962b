"""The official OCI distribution-spec conformance suites against a fresh `registry-ext serve`.

Both suites, built as static binaries with a ``run.sh`` (their README says how), are looked for in
``$OCI_CONFORMANCE_DIR``, then ``/work/shared/tools/oci-conformance``, then
``../shared/tools/oci-conformance`` next to this repository. Each run gets its own server: a free port,
an empty data directory and its own embedded redis-server (the suites use fixed repository names and
expect an empty registry); the ``-s3`` runs keep everything in a new bucket of a real S3 server
instead. Asserted: the suite exits 0 with 0 failures and 0 errors; the counts and the failed checks
are in the failure message. Without the binaries the tests are skipped, saying where they were looked
for.
"""
from __future__ import annotations

import os
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.e2e_server import RegistryServer
from tests.support.s3_hosts import s3_config

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RUNS = {  # test id -> (run.sh's WHICH, extra environment, storage driver)
    "v1.1.1": ("v1.1.1", {}, "filesystem"),
    "main-dev": ("main", {"OCI_VERSION": "dev"}, "filesystem"),
    "v1.1.1-s3": ("v1.1.1", {}, "s3"),
    "main-dev-s3": ("main", {"OCI_VERSION": "dev"}, "s3"),
}


def conformance_dir() -> Path | None:
    candidates = [os.environ.get("OCI_CONFORMANCE_DIR"), "/work/shared/tools/oci-conformance",
                  str(ROOT.parent / "shared" / "tools" / "oci-conformance")]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if (path / "run.sh").is_file() and (path / "conformance-v1.1.1").is_file() \
                and (path / "conformance-main").is_file():
            return path
    return None


def junit_summary(results: Path) -> tuple[dict[str, int], list[str]]:
    """Counts from the suite's junit.xml and the failed checks (name: first words of the reason)."""
    root = ET.parse(results / "junit.xml").getroot()
    counts = {key: int(float(root.get(key, 0))) for key in ("tests", "failures", "errors", "skipped", "disabled")}
    failed = []
    for case in root.iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is None and case.get("status") not in ("failure", "error"):
            continue
        reason = (problem.get("message") or problem.text) if problem is not None else \
            (case.findtext("system-out") or "")
        failed.append(f"{case.get('name')}: {' '.join((reason or '').split())[:200]}")
    return counts, failed


@pytest.mark.parametrize("run", list(RUNS))
def test_conformance_suite_passes(run, tmp_path, request):
    suite_dir = conformance_dir()
    if suite_dir is None:
        pytest.skip("the OCI conformance binaries are not here: set OCI_CONFORMANCE_DIR to the folder "
                    "with run.sh, conformance-v1.1.1 and conformance-main")
    which, extra, driver = RUNS[run]
    env = {}
    if driver == "s3":  # a new bucket on the real S3 server (Ceph RGW)
        server_s3 = request.getfixturevalue("s3_server")
        config = s3_config(tmp_path / "registry.toml", server_s3, server_s3.new_bucket("conformance"))
        env["REGISTRY_EXT_CONFIG"] = str(config)
    server = RegistryServer(tmp_path / "server", workers=2, env=env)
    results = tmp_path / "results"
    try:
        server.start()
        started = time.monotonic()
        proc = subprocess.run([str(suite_dir / "run.sh"), which, server.url, str(results)],
                              env=dict(os.environ, **extra), capture_output=True, text=True, timeout=600)
        seconds = time.monotonic() - started
    finally:
        server.close()
    counts, failed = junit_summary(results)
    report = (f"{run}: exit {proc.returncode} after {seconds:.1f}s, {counts}\n"
              f"{proc.stdout[-1500:]}\nfailed checks ({len(failed)}):\n" + "\n".join(failed[:40]) +
              f"\nfull log: {results / 'log.txt'}")
    assert counts["tests"] > 0, report
    assert proc.returncode == 0 and counts["failures"] == 0 and counts["errors"] == 0 and not failed, report
