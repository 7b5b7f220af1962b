"""Load soak: the deployed stack under a mixed load for minutes; errors, lost pushes, drift, memory.

Starts the production stack from deploy/ on loopback ports (redis-server, gunicorn with
``deploy/gunicorn.conf.py`` and its default 2 gthread workers x 16 threads, nginx with
``deploy/nginx.conf``; ``workers.Stack``), then drives it from separate client processes
(``bench/soak_load.py``: pushes, tag moves, pulls, listings, deletes) for ``--duration`` seconds while
sampling the resident memory of the gunicorn master, every worker, redis-server and nginx every
``--sample-every`` seconds. Afterwards (``bench/soak_verify.py``): every acknowledged push still readable,
``registry-ext check`` on the live data, no upload session or temp file left behind, the server
logs free of tracebacks and worker restarts; ``registry-ext check`` also runs once half-way, on the
registry under load. Prints a Markdown summary, writes JSON to
bench/results/.

    .venv/bin/python -m bench.soak                     # 300 s, 2 client processes x 4 threads
    .venv/bin/python -m bench.soak --duration 60 --warmup 15

``run_soak()`` is the same procedure for any running stack (``tests/e2e/test_soak.py`` gives it
the tests' ``DeployStack``). Loopback only; every wait is bounded.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import soak_report, soak_verify
from bench._common import RESULTS_DIR, check_loopback

REPOSITORY = Path(__file__).resolve().parents[1]  # the client processes run `python -m bench.soak_load` from here


@dataclasses.dataclass
class Target:
    """A running stack: where to send requests, which processes to watch, which settings to check."""

    url: str
    config: Path          # the registry's TOML (storage root and Redis URL), for `registry-ext check`
    data_dir: Path
    gunicorn_pid: int     # the master; its children are the workers
    redis_pid: int
    nginx_pid: int | None
    gunicorn_log: Path    # gunicorn's stdout/stderr: access log lines with pid=, errors


# -- memory -----------------------------------------------------------------------------------

def rss_mib(pid: int) -> float | None:
    """Resident memory of one process in MiB (VmRSS), None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    rest = fh.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(rest[1]) == pid and rest[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def watched(target: Target) -> dict[str, int]:
    """Label -> pid of every process whose memory is sampled."""
    procs = {"gunicorn master": target.gunicorn_pid, "redis-server": target.redis_pid}
    procs.update({f"worker {pid}": pid for pid in children(target.gunicorn_pid)})
    if target.nginx_pid:
        procs["nginx master"] = target.nginx_pid
        procs.update({f"nginx worker {pid}": pid for pid in children(target.nginx_pid)})
    return procs


class Sampler(threading.Thread):
    """Samples every watched process's RSS every ``every`` seconds until stopped."""

    def __init__(self, target: Target, every: float):
        super().__init__(daemon=True)
        self.target, self.every = target, every
        self.samples: list[dict] = []
        self.halt = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> dict:
        rss = {label: rss_mib(pid) for label, pid in watched(self.target).items()}
        entry = {"t": round(time.monotonic() - self.t0, 1), "rss_mib": {k: round(v, 1) for k, v in rss.items() if v}}
        self.samples.append(entry)
        return entry

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.sample()


# -- load -------------------------------------------------------------------------------------

def run_clients(url: str, seconds: float, clients: int, threads: int, seed: int, workdir: Path) -> list[dict]:
    """Run ``clients`` soak_load.py processes in parallel; their JSON results."""
    workdir.mkdir(parents=True, exist_ok=True)
    procs, outs = [], []
    for client in range(clients):
        out = workdir.resolve() / f"load-{client}.json"
        log = open(workdir / f"load-{client}.log", "wb")
        argv = [sys.executable, "-m", "bench.soak_load", "--url", url, "--seconds", str(seconds), "--threads",
                str(threads), "--client", str(client), "--clients", str(clients), "--seed", str(seed),
                "--out", str(out)]
        procs.append((subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       cwd=REPOSITORY), log))
        outs.append(out)
    results = []
    for (proc, log), out in zip(procs, outs):
        try:
            proc.wait(seconds + 420)  # bounded: the load threads stop at the deadline
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        if proc.returncode != 0 or not out.exists():
            tail = (workdir / out.name.replace(".json", ".log")).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"load client exited with {proc.returncode}:\n{tail}")
        results.append(json.loads(out.read_text()))
    return results


def run_soak(target: Target, *, seconds: float, warmup: float, clients: int = 2, threads: int = 4,
             sample_every: float = 5.0, seed: int = 1, workdir: Path | None = None) -> dict:
    """Load the stack, sample memory, verify everything afterwards; the whole result (JSON-ready)."""
    check_loopback(target.url)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="soak-"))
    workers_before = children(target.gunicorn_pid)
    sampler = Sampler(target, sample_every)
    start = sampler.sample()
    sampler.start()
    began = time.monotonic()
    during: dict = {}  # `registry-ext check` half-way, on the live registry under load
    checker = threading.Timer(seconds / 2, lambda: during.update(soak_verify.run_check(target.config)))
    checker.start()
    try:
        loads = run_clients(target.url, seconds, clients, threads, seed, workdir)
    finally:
        checker.cancel()  # only if it has not started yet
    wall = time.monotonic() - began
    checker.join(600)
    sampler.halt.set()
    sampler.join(sample_every + 5)
    end = sampler.sample()
    after_warmup = next((s for s in sampler.samples if s["t"] >= warmup), end)
    verified = soak_verify.verify_pushes(target.url, loads)
    return {
        "config": {"seconds": seconds, "warmup": warmup, "clients": clients, "threads": threads,
                   "sample_every": sample_every, "seed": seed},
        "wall_seconds": round(wall, 1),
        "requests": soak_report.merge(loads, wall),
        "unexpected": sum(r["unexpected"] for r in loads),
        "mismatches": sum(r["mismatches"] for r in loads),
        "stuck_threads": sum(r["stuck_threads"] for r in loads),
        "samples_of_wrong_answers": [s for r in loads for s in r["samples"]][:40],
        "rss": {"start": start, "after_warmup": after_warmup, "end": end, "series": sampler.samples},
        "workers_before": workers_before, "workers_after": children(target.gunicorn_pid),
        "verify": verified,
        "check_under_load": during,
        "check": soak_verify.run_check(target.config),
        "leftovers": soak_verify.leftovers(target.data_dir),
        "server_log": soak_verify.scan_gunicorn_log(target.gunicorn_log),
    }


# -- the script -------------------------------------------------------------------------------

def start_stack(workdir: Path):
    """The deploy/ stack of bench/workers.py with the shipped gunicorn settings; (stack, Target)."""
    from bench.workers import Stack

    stack = Stack(workdir, gunicorn_args=[]).start()
    redis, gunicorn, nginx = (next(p for p in stack.procs if p.name == n) for n in ("redis", "gunicorn", "nginx"))
    return stack, Target(stack.url, workdir / "registry.toml", stack.data, gunicorn.proc.pid, redis.proc.pid,
                         nginx.proc.pid, gunicorn.log)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    ap.add_argument("--warmup", type=float, default=60,
                    help="RSS 'after warm-up' is the first sample this many seconds in (default 60)")
    ap.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--threads", type=int, default=4, help="threads per client process (default 4)")
    ap.add_argument("--sample-every", type=float, default=5, help="RSS sampling period in s (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-data", action="store_true", help="keep the stack's folder (printed)")
    ap.add_argument("--label", default="", help="suffix of the JSON file name")
    args = ap.parse_args(argv)
    for tool in ("nginx", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    stack, target = start_stack(workdir)
    try:
        result = run_soak(target, seconds=args.duration, warmup=args.warmup, clients=args.clients,
                          threads=args.threads, sample_every=args.sample_every, seed=args.seed,
                          workdir=workdir / "load")
    finally:
        stack.stop()
    result["command"] = " ".join([".venv/bin/python", "-m", "bench.soak", *(argv or sys.argv[1:])])
    print(soak_report.markdown(result))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    out = Path(RESULTS_DIR) / f"soak-{time.strftime('%Y%m%d-%H%M%S')}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"\nJSON: {out}")
    if args.keep_data:
        print(f"data kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if soak_report.passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
