"""The soak's checks after the load (``soak.py``): nothing acknowledged lost, nothing drifted or left over.

Not a script. ``verify_pushes`` reads back what the load threads were told succeeded, using each
thread's final state from ``soak_load.py``: every manifest it pushed and did not delete answers
``GET`` by digest with exactly its bytes; every tag it pushed and did not move or delete since
still names the same manifest; every tag it deleted is gone; every layer it uploaded is still
served with bytes that hash to its digest; every hot tag names one of the manifests some thread
was told it had pushed there. ``run_check`` runs ``registry-ext check`` with the stack's own
settings file; ``leftovers`` counts upload sessions and temp files; ``scan_gunicorn_log`` counts
requests per worker, 5xx answers, tracebacks and worker (re)starts in gunicorn's output.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from bench._common import FastClient

MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"
LOST_SAMPLES = 20


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def expectations(loads: list[dict]) -> list[tuple[str, str, str | None]]:
    """(what, path, digest the answer must hash to, or None for a 404) for every acknowledged fact."""
    checks, hot = [], {}
    for load in loads:
        for state in load["states"]:
            name = state["name"]
            checks += [("manifest", f"/v2/{name}/manifests/{d}", d) for d in state["manifests"]]
            checks += [("tag", f"/v2/{name}/manifests/{t}", d) for t, d in state["live"].items()]
            checks += [("deleted tag", f"/v2/{name}/manifests/{t}", None) for t in state["deleted"]]
            checks += [("layer", f"/v2/{name}/blobs/{d}", d) for d in state["layers"]]
            for tag, digests in state["hot"].items():
                hot.setdefault((name, tag), set()).update(digests)
    checks += [("hot tag", f"/v2/{name}/manifests/{tag}", "|".join(sorted(ds))) for (name, tag), ds in hot.items()
               if ds]
    return checks


def verify_pushes(url: str, loads: list[dict], threads: int = 4) -> dict:
    """Read back every acknowledged fact; count and sample what is lost or wrong."""
    checks = expectations(loads)
    local, clients = threading.local(), []

    def one(check: tuple[str, str, str | None]) -> str | None:
        what, path, want = check
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = FastClient(url)
            clients.append(client)
        try:
            status, body, _ = client.request("GET", path, {"Accept": MANIFEST_ACCEPT})
        except Exception as exc:  # noqa: BLE001 - counted as lost: the fact could not be read back
            return f"{what} {path}: {exc!r}"
        if want is None:
            return None if status == 404 else f"{what} {path}: {status}, expected 404"
        if status != 200 or _sha256(body) not in want.split("|"):
            return f"{what} {path}: {status}, body {_sha256(body)}, expected {want[:200]}"
        return None

    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            failures = [f for f in pool.map(one, checks) if f]
    finally:
        for client in clients:
            client.close()
    counts: dict[str, int] = {}
    for what, _, _ in checks:
        counts[what] = counts.get(what, 0) + 1
    return {"acknowledged_pushes": sum(s["acked"] for load in loads for s in load["states"]),
            "facts_checked": counts, "lost": len(failures), "lost_samples": failures[:LOST_SAMPLES]}


def registry_ext_cli() -> str:
    return str(Path(sys.executable).parent / "registry-ext")


def run_check(config: Path) -> dict:
    """``registry-ext check --config <the stack's TOML>``: its exit code and findings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_EXT_")}  # the file decides
    out = subprocess.run([registry_ext_cli(), "check", "--config", str(config)], capture_output=True,
                         text=True, timeout=600, env=env)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        report = {"findings": None, "repositories": None}
    return {"exit": out.returncode, "findings": report["findings"], "repositories": report["repositories"],
            "stderr": out.stderr[-2000:]}


def leftovers(data_dir: Path) -> dict:
    """Upload sessions and temp files still on storage once every client has finished."""
    data_dir = Path(data_dir)
    return {"upload_sessions": len(list((data_dir / "uploads").glob("*"))),
            "temp_files": len(list((data_dir / "tmp").glob("*")))}


_ACCESS = re.compile(r"^time=\S+ pid=<?(\d+)>? .* status=(\d{3}) ")


def scan_gunicorn_log(path: Path) -> dict:
    """Requests per worker pid and 5xx from the access lines; tracebacks and worker starts/timeouts."""
    by_worker: dict[str, int] = {}
    found = {"status_5xx": 0, "tracebacks": 0, "worker_timeouts": 0, "workers_booted": 0}
    samples: list[str] = []
    with open(path, errors="replace") as fh:
        for line in fh:
            match = _ACCESS.match(line)
            if match:
                by_worker[match.group(1)] = by_worker.get(match.group(1), 0) + 1
                if match.group(2).startswith("5"):
                    found["status_5xx"] += 1
                    samples.append(line.strip())
                continue
            for key, needle in (("tracebacks", "Traceback"), ("worker_timeouts", "WORKER TIMEOUT"),
                                ("workers_booted", "Booting worker")):
                if needle in line:
                    found[key] += 1
                    if key != "workers_booted":
                        samples.append(line.strip())
    return dict(found, requests_by_worker=by_worker, samples=samples[:LOST_SAMPLES])
