"""The ``peer`` command of ``workers.py``: ours against docker-registry, both behind the same nginx.

Not a script. One ``Stack`` with the peer; both sides get the same 10-tag repository and pull blob, the answers
are compared, then each operation (blob pull, blob push, manifest HEAD, tags/list) is timed in rounds
alternating the order of the sides; the medians are printed as a Markdown table.
"""
from __future__ import annotations

import http.client
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.workers_load import (MANIFEST, MIB, Client, SplicePuller, blob_bytes, populate, push_blob,
                          request, run_threads, wait_quiet)
from bench.workers_stack import Stack
OPS = ["pull_mib_s", "push_mib_s", "manifest_head_req_s", "tags_list_req_s"]
ERROR_SAMPLES: list[str] = []


def timed(duration: float, threads: int, op) -> tuple[float, int, int]:
    """Run ``op(i)`` -> units in ``threads`` threads for ``duration`` s: (units/s, ops, errors)."""
    stop = threading.Event()
    units, ops, errors = [0] * threads, [0] * threads, [0] * threads

    def loop(i: int) -> None:
        while not stop.is_set():
            try:
                units[i] += op(i)
                ops[i] += 1
            except (OSError, AssertionError, http.client.HTTPException) as exc:
                errors[i] += 1
                if len(ERROR_SAMPLES) < 20:
                    ERROR_SAMPLES.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)

    started = time.perf_counter()
    workers = run_threads(threads, loop)
    stop.wait(duration)
    stop.set()
    for worker in workers:
        worker.join(120)
    return sum(units) / (time.perf_counter() - started), sum(ops), sum(errors)


def check_same_answers(sides: dict, fixtures: dict, pull_size: int) -> None:
    """Both sides list the same tags and hold the pull blob, before anything is timed."""
    for side, url in sides.items():
        status, body, headers = request("GET", f"{url}/v2/bench/deploy/tags/list")
        assert status == 200 and sorted(json.loads(body)["tags"]) == fixtures[side]["tags"], (side, body)
        status, _, headers = request("HEAD", f"{url}/v2/bench/deploy/blobs/{fixtures[side]['pull']}")
        assert status == 200 and int(headers["Content-Length"]) == pull_size, (side, headers)


def side_ops(base: str, fixture: dict, concurrency: int, push_pool: list[bytes]) -> dict:
    """The timed operations on one side: name -> op(thread index) -> units, plus ``reset``."""
    clients = [Client(base) for _ in range(concurrency)]
    pullers = [SplicePuller(base) for _ in range(concurrency)]
    rng = [random.Random(i) for i in range(concurrency)]
    blob_path = f"/v2/{fixture['repo']}/blobs/{fixture['pull']}"
    pushes = [0] * concurrency

    def push(i: int) -> int:
        data = push_pool[(i + pushes[i] * concurrency) % len(push_pool)]
        pushes[i] += 1
        push_blob(base, "bench/push", data)
        return len(data)

    def small(i: int, method: str, path: str) -> int:
        if clients[i].small(method, path, {"Accept": MANIFEST}) != 200:
            raise AssertionError(f"{method} {path}")
        return 1

    def reset() -> None:  # fresh connections per timed run: nginx closes idle ones after 75 s
        for conn in (*clients, *pullers):
            conn.close()

    repo = fixture["repo"]
    return {
        "reset": reset,
        "pull_mib_s": lambda i: pullers[i].pull(blob_path) / MIB,
        "push_mib_s": lambda i: push(i) / MIB,
        "manifest_head_req_s": lambda i: small(
            i, "HEAD", f"/v2/{repo}/manifests/{rng[i].choice(fixture['tags'])}"),
        "tags_list_req_s": lambda i: small(i, "GET", f"/v2/{repo}/tags/list"),
    }


def time_op(name: str, table: dict, args) -> dict:
    """Rounds of one operation, alternating which side goes first; medians and ratio ours/peer."""
    figures: dict = {"ours": [], "peer": []}
    for rnd in range(args.rounds):
        order = ("ours", "peer") if rnd % 2 == 0 else ("peer", "ours")
        for side in order:
            if args.wait_quiet:
                wait_quiet(args.wait_quiet)
            table[side]["reset"]()
            duration = args.duration * (1.5 if name == "push_mib_s" else 1)
            rate, count, errors = timed(duration, args.concurrency, table[side][name])
            figures[side].append({"rate": rate, "ops": count, "errors": errors})
            print(f"{name} round {rnd + 1} {side}: {rate:.1f} ({count} ops, {errors} errors)", flush=True)
    ours = statistics.median(f["rate"] for f in figures["ours"])
    peer = statistics.median(f["rate"] for f in figures["peer"])
    return {"ours": ours, "peer": peer, "ratio": ours / peer if peer else float("inf"), "rounds": figures}


def cmd_peer(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-peer-nginx-"))
    stack = Stack(workdir, [], accel=True, peer=True).start()
    push_pool = [blob_bytes(args.push_mib * MIB, seed=100 + i) for i in range(args.concurrency * 2)]
    results: dict = {}
    try:
        sides = {"ours": stack.url, "peer": stack.peer_url}
        fixtures = {side: populate(url, "bench/deploy", args.pull_mib * MIB) for side, url in sides.items()}
        assert fixtures["ours"]["pull"] == fixtures["peer"]["pull"]
        check_same_answers(sides, fixtures, args.pull_mib * MIB)
        table = {side: side_ops(url, fixtures[side], args.concurrency, push_pool) for side, url in sides.items()}
        for name in args.ops:
            results[name] = time_op(name, table, args)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if ERROR_SAMPLES:
        print("error samples:", *ERROR_SAMPLES, sep="\n  ")
    print_peer_table(results, args)
    return results


def print_peer_table(results: dict, args) -> None:
    print(f"\nThrough nginx (deploy/nginx.conf), {args.concurrency} client threads, median of {args.rounds} "
          f"rounds of {args.duration:.0f} s; pull blob {args.pull_mib} MiB, pushed blobs {args.push_mib} MiB\n")
    print("| operation | registry-ext | docker-registry 2.8 | ratio |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['ours']:.1f} | {r['peer']:.1f} | {r['ratio']:.2f}x |")
