"""The ``workers`` command of ``workers.py``: gunicorn worker classes and counts under a mixed load.

Not a script. For each candidate a fresh ``Stack`` runs, for ``--duration`` seconds, threads of small requests
(manifest HEAD and tags/list), threads pulling a blob, and slow clients trickling a chunked upload for the
whole run; the medians over the rounds are printed as a Markdown table.
"""
from __future__ import annotations

import http.client
import os
import random
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.workers_load import MANIFEST, MIB, Client, populate, request, run_threads, split, wait_quiet
from bench.workers_stack import Stack
CANDIDATES = {
    # --threads 1: gunicorn silently runs gthread for "sync" with threads > 1 (the config's default)
    "sync-5": ["-k", "sync", "--workers", "5", "--threads", "1"],
    "sync-16": ["-k", "sync", "--workers", "16", "--threads", "1"],
    "gthread-4x4": ["-k", "gthread", "--workers", "4", "--threads", "4"],
    "gthread-2x16": ["-k", "gthread", "--workers", "2", "--threads", "16"],
    "gthread-4x16": ["-k", "gthread", "--workers", "4", "--threads", "16"],
    "gthread-2x32": ["-k", "gthread", "--workers", "2", "--threads", "32"],
    "gevent-2": ["-k", "gevent", "--workers", "2", "--worker-connections", "1000"],
}
MEDIANS = ("small_ops_s", "small_p50_ms", "small_p99_ms", "pull_mib_s", "slow_finish_max_s")


def slow_upload(index: int, base: str, repo: str, stop: threading.Event, out: dict) -> None:
    """A client on a slow link: a chunked PATCH body of 16 KiB every 0.25 s until ``stop``.

    Records whether the upload was accepted (202) and how long the answer took after the
    last byte (a worker or thread that never got to it shows here).
    """
    host, port, _ = split(base + "/")
    try:
        status, _, headers = request("POST", f"{base}/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        if status != 202:
            raise OSError(f"POST {status}")
        with socket.create_connection((host, port), timeout=60) as sock:
            sock.sendall((f"PATCH {headers['Location']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
            piece = os.urandom(16 * 1024)
            while not stop.wait(0.25):
                sock.sendall(b"4000\r\n" + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
            t0 = time.perf_counter()
            reply = sock.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        out[index] = {"ok": " 202 " in reply, "finish_s": time.perf_counter() - t0, "reply": reply}
    except OSError as exc:
        out[index] = {"ok": False, "finish_s": float("nan"), "reply": f"error: {exc}"}


def mixed_load(base: str, fixture: dict, duration: float, small_threads: int, pull_threads: int,
               slow: int) -> dict:
    """Rates count what completed inside the ``duration`` window; a request stuck behind a
    blocked worker shows as a stall (> 1 s) or an error (client timeout 5 s small, 30 s pull)."""
    repo = fixture["repo"]
    stop, slow_stop = threading.Event(), threading.Event()
    slow_out: dict = {}
    slow_threads = run_threads(slow, slow_upload, base, repo, slow_stop, slow_out)
    time.sleep(1.0)  # the slow clients hold their workers / threads before the clock starts
    threads: list[threading.Thread] = []
    lat: list[list[float]] = [[] for _ in range(small_threads)]
    errors = [0] * (small_threads + pull_threads)
    pulled = [0] * pull_threads
    deadline = time.perf_counter() + duration

    def small(i: int) -> None:
        client, rng = Client(base, timeout=5), random.Random(i)
        while not stop.is_set():
            tag = rng.choice(fixture["tags"])
            path = f"/v2/{repo}/manifests/{tag}" if rng.random() < 0.5 else f"/v2/{repo}/tags/list"
            t0 = time.perf_counter()
            try:
                ok = client.small("HEAD" if "manifests" in path else "GET", path, {"Accept": MANIFEST}) == 200
            except (OSError, http.client.HTTPException):
                ok = False
            done = time.perf_counter()
            if done > deadline:
                break
            if ok:
                lat[i].append(done - t0)
            else:
                errors[i] += 1
        client.close()

    def pull(i: int) -> None:
        client, buf = Client(base, timeout=30), bytearray(MIB)
        path = f"/v2/{repo}/blobs/{fixture['pull']}"
        while not stop.is_set():
            try:
                n = client.pull(path, buf)
            except (OSError, http.client.HTTPException):
                errors[small_threads + i] += 1
                continue
            if time.perf_counter() > deadline:
                break
            pulled[i] += n
        client.close()

    try:
        threads = run_threads(small_threads, small) + run_threads(pull_threads, pull)
        stop.wait(duration)
    finally:  # also on Ctrl-C: let every client finish before the servers stop
        stop.set()
        for thread in threads:
            thread.join(60)
        slow_stop.set()
        for thread in slow_threads:
            thread.join(90)
    return load_figures(lat, errors, pulled, slow_out, slow, duration)


def load_figures(lat: list[list[float]], errors: list[int], pulled: list[int], slow_out: dict, slow: int,
                 duration: float) -> dict:
    """One run's figures from what the small, pull and slow clients recorded."""
    all_lat = sorted(x for per in lat for x in per)

    def pct(p: float) -> float:
        return 1000 * all_lat[min(len(all_lat) - 1, int(p * len(all_lat)))] if all_lat else float("nan")
    finished = [slow_out.get(i, {"ok": False, "finish_s": float("nan")}) for i in range(slow)]
    return {
        "small_ops_s": len(all_lat) / duration, "small_p50_ms": pct(0.50), "small_p99_ms": pct(0.99),
        "small_stalls": sum(1 for x in all_lat if x > 1.0), "pull_mib_s": sum(pulled) / MIB / duration,
        "errors": sum(errors), "slow_ok": sum(1 for f in finished if f["ok"]),
        "slow_finish_max_s": max((f["finish_s"] for f in finished), default=0.0),
        "slow_replies": sorted({slow_out.get(i, {}).get("reply", "none") for i in range(slow)}),
    }


def installed_candidates(names: list[str]) -> list[str]:
    """``names`` without the gevent ones when gevent is not importable (said on stdout)."""
    try:
        import gevent  # noqa: F401
    except ImportError:
        skipped = [n for n in names if n.startswith("gevent")]
        names = [n for n in names if not n.startswith("gevent")]
        if skipped:
            print(f"gevent is not installed: skipping {', '.join(skipped)} (pip install gevent)")
    return names


def run_candidate(name: str, args) -> dict:
    """One run of the mixed load against a fresh stack with candidate ``name``."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-workers-{name}-"))
    stack = Stack(workdir, CANDIDATES[name], accel=args.mode == "accel").start()
    try:
        fixture = populate(stack.url, "bench/workers", args.pull_mib * MIB)
        quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
        result = mixed_load(stack.url, fixture, args.duration, args.small, args.pulls, args.slow)
        result["quiet"] = quiet
        return result
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cmd_workers(args) -> dict:
    names = installed_candidates(args.candidates or list(CANDIDATES))
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for rnd in range(args.rounds):
        for name in (names if rnd % 2 == 0 else names[::-1]):
            result = run_candidate(name, args)
            runs[name].append(result)
            print(f"round {rnd + 1} {name}: {result}", flush=True)
    results = {}
    for name, got in runs.items():
        med = {key: statistics.median(r[key] for r in got) for key in MEDIANS}
        med.update(small_stalls=sum(r["small_stalls"] for r in got), errors=sum(r["errors"] for r in got),
                   slow_ok=sum(r["slow_ok"] for r in got), runs=got)
        results[name] = med
    print_workers_table(results, args)
    return results


def print_workers_table(results: dict, args) -> None:
    print(f"\nMixed load, mode={args.mode}, median of {args.rounds} runs of {args.duration:.0f} s "
          f"(errors, stalls and slow uploads summed over the runs): {args.small} threads of small "
          f"requests (manifest HEAD / tags/list), {args.pulls} pulling a {args.pull_mib} MiB blob, "
          f"{args.slow} slow uploaders (64 KiB/s each, chunked)\n")
    print("| workers | small req/s | p50 ms | p99 ms | stalls > 1 s | pull MiB/s | errors "
          "| slow uploads ok | slow answer max s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['small_ops_s']:.0f} | {r['small_p50_ms']:.1f} | {r['small_p99_ms']:.0f} | "
              f"{r['small_stalls']} | {r['pull_mib_s']:.0f} | {r['errors']} | "
              f"{r['slow_ok']}/{args.slow * args.rounds} | {r['slow_finish_max_s']:.2f} |")
