"""Time tag listing and manifest lookups on two registries side by side (ours vs peer).

Operations (each timed on both sides in the same run, same client, same random tags):

  ping           GET  /v2/                           (calibration: the cheapest request; shows the client ceiling)
  tags_full      GET  /v2/<repo>/tags/list            (following Link rel="next" until the end, so a paginating
                                                       server is timed for the whole listing; 1 op = all pages)
  tags_n100      GET  /v2/<repo>/tags/list?n=100      (one request; distribution 2.8 ignores n and returns all tags,
                                                       recorded under "tags/resp")
  tags_walk100   GET  /v2/<repo>/tags/list?n=100      then every Link rel="next": a client paging through the whole
                                                       list 100 at a time (1 op = all pages; 1 page on the peer)
  manifest_get   GET  /v2/<repo>/manifests/<tag>      (random tag, OCI Accept header)
  manifest_head  HEAD /v2/<repo>/manifests/<tag>      (random tag)

For every operation and side: requests/s (successful operations / wall time), median and p95 latency,
body bytes per operation, tags and pages per operation, and -- when the server's process group is known --
server CPU ms per operation.
The ratio column is ours/peer throughput (>1: ours is faster). Rounds alternate the order
(ours, peer, peer, ours, ...) so drift does not favour one side.

Before timing, a correctness pass (not timed) compares the two sides: same tag set, lexical order, what
n=100 returns, a paginated walk with n=100 (no duplicates, nothing missing), and byte-identical
manifests / matching Docker-Content-Digest for a sample of tags.

Prints a Markdown table and writes JSON to bench/results/tags_list-<timestamp>.json.

Example::

    python -m bench.tags_list --ours http://127.0.0.1:5002 --peer http://127.0.0.1:5001 --repo bench/app \\
        --duration 10 --concurrency 4
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from bench._common import RESULTS_DIR, proc_tree_cpu_seconds
from bench.tags_list_checks import run_checks
from bench.tags_list_ops import OPERATIONS, Side, make_op, summarize, timed_run
from bench.tags_list_report import markdown, notes, ratio
# The parts: tags_list_ops.py (operations, timing loop, summaries), tags_list_checks.py (the correctness
# pass), tags_list_report.py (table and notes).


def run(ours: Side, peer: Side, repo: str, duration: float, concurrency: int, rounds: int = 4,
        seed: int = 1, warmup: int = 20, timeout: float = 120.0, ops: list[str] | None = None,
        sample: int = 50, label: str | None = None, meta: dict | None = None, quiet: bool = False) -> dict:
    ops = ops or OPERATIONS
    rounds = max(1, rounds)
    checks, common = run_checks(ours, peer, repo, seed, sample, timeout)

    per_round = duration / rounds
    results = {"label": label, "repo": repo, "tags_common": len(common), "duration_per_side": duration,
               "rounds": rounds, "concurrency": concurrency, "seed": seed, "warmup": warmup,
               "ours": ours.url, "peer": peer.url, "python": platform.python_version(),
               "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "meta": meta or {}, "checks": checks, "operations": {}}
    for op in ops:
        so, sp = time_op(op, ours, peer, repo, common, per_round, concurrency, rounds, seed,
                         warmup if op not in ("tags_full", "tags_walk100") else 3, timeout)
        results["operations"][op] = {"ours": so, "peer": sp,
                                     "ratio_ours_over_peer": ratio(so["ops_per_s"], sp["ops_per_s"])}
        if not quiet:
            rr = results["operations"][op]["ratio_ours_over_peer"]
            print(f"  {op:14s} ours {so['ops_per_s']:9.1f}/s  peer {sp['ops_per_s']:9.1f}/s  ours/peer "
                  f"{(rr if rr is not None else float('nan')):.2f}", file=sys.stderr, flush=True)
    return results


def time_op(op: str, ours: Side, peer: Side, repo: str, tags: list[str], per_round: float, concurrency: int,
            rounds: int, seed: int, warmup: int, timeout: float) -> tuple[dict, dict]:
    """``op`` timed on both sides in rounds alternating the order; the summaries of ours and of the peer."""
    runs = {"ours": [], "peer": []}
    cpu = {"ours": 0.0, "peer": 0.0}
    for rnd in range(rounds):
        order = (ours, peer) if rnd % 2 == 0 else (peer, ours)
        for side in order:
            fn = make_op(op, side.url, repo, tags, timeout)
            c0 = proc_tree_cpu_seconds(side.pgid)
            r = timed_run(fn, side.url, concurrency, per_round, seed + rnd, warmup, timeout)
            c1 = proc_tree_cpu_seconds(side.pgid)
            if c0 is None or c1 is None:
                cpu[side.name] = None
            elif cpu[side.name] is not None:
                cpu[side.name] += c1 - c0
            runs[side.name].append(r)
    return summarize(runs["ours"], cpu["ours"]), summarize(runs["peer"], cpu["peer"])


def write_results(results: dict, out_dir: str = RESULTS_DIR) -> str:
    os.makedirs(out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = results.get("label") or "run"
    path = os.path.join(out_dir, f"tags_list-{label}-{stamp}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, default=str)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True, help="our registry base URL (loopback only)")
    ap.add_argument("--peer", required=True, help="peer registry base URL (loopback only)")
    ap.add_argument("--repo", default="bench/app", help="repository (default bench/app)")
    ap.add_argument("--duration", type=float, default=10.0,
                    help="measured seconds per operation per side, split over the rounds (default 10)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternating rounds ours/peer, peer/ours, ... (default 4)")
    ap.add_argument("--ops", default=",".join(OPERATIONS), help=f"comma-separated subset of {OPERATIONS}")
    ap.add_argument("--seed", type=int, default=1, help="random seed for tag choice (default 1)")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured warm-up requests per run (default 20)")
    ap.add_argument("--sample", type=int, default=50, help="tags compared byte-for-byte in the check pass")
    ap.add_argument("--timeout", type=float, default=120.0, help="per-request timeout (default 120 s)")
    ap.add_argument("--ours-pgid", type=int, default=None, help="process group of our server (for CPU/op)")
    ap.add_argument("--peer-pgid", type=int, default=None, help="process group of the peer (for CPU/op)")
    ap.add_argument("--label", default=None, help="label used in the results file name")
    args = ap.parse_args(argv)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    bad = [o for o in ops if o not in OPERATIONS]
    if bad:
        ap.error(f"unknown operations {bad}")
    results = run(Side("ours", args.ours, args.ours_pgid), Side("peer", args.peer, args.peer_pgid), args.repo,
                  args.duration, args.concurrency, args.rounds, args.seed, args.warmup, args.timeout, ops,
                  args.sample, args.label)
    path = write_results(results)
    print(markdown(results))
    print()
    for line in notes(results):
        print(f"- {line}")
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
