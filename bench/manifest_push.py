"""Manifest pushes and tag moves at C client threads, ours (``registry-ext serve``) against the peer.

Issue #11 item 1. Each round, on each side (order alternating: ours, peer, peer, ours, ...):

- ``push``: ``--tags`` new tags into a fresh repository, one new manifest each (what ``populate.py``
  pushes: OCI image manifests sharing two small blobs, every one a distinct digest);
- ``move``: the same tags pushed again with new manifests, so every push moves its tag.

Both in one repository with ``--concurrency`` threads (default 8), one keep-alive ``requests`` session per
thread. Server CPU is the utime+stime of each server's process group. Reports manifests/s per side, the
ratio per round and the ratio of the medians.

    .venv/bin/python -m bench.manifest_push                        # 500 tags, 4 rounds
    .venv/bin/python -m bench.manifest_push --tags 200 --rounds 2  # quick

JSON with every figure goes to ``bench/results/manifest_push-<commit>-<time>.json``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import threading
import time

import requests

from bench._common import proc_tree_cpu_seconds, short_commit
from bench.peer import OURS_BINARY, ours_registry, peer_registry
from bench.populate import OCI_MANIFEST, base_blobs, generated_tags, manifest_for, push_blob


def push_all(url: str, items: list[tuple[int, str, str]], concurrency: int, config: bytes,
             layer: bytes) -> tuple[float, int]:
    """PUT one manifest per (index, tag, repository) with ``concurrency`` threads; (seconds, errors)."""
    local = threading.local()
    sessions: list[requests.Session] = []

    def session() -> requests.Session:
        if not hasattr(local, "sess"):
            local.sess = requests.Session()
            local.sess.trust_env = False
            sessions.append(local.sess)
        return local.sess

    def one(item: tuple[int, str, str]) -> bool:
        index, tag, repo = item
        body = manifest_for(tag, index, config, layer)
        resp = session().put(f"{url}/v2/{repo}/manifests/{tag}", data=body, timeout=60,
                             headers={"Content-Type": OCI_MANIFEST})
        return resp.status_code == 201

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as ex:
        errors = sum(not ok for ok in ex.map(one, items))
    elapsed = time.perf_counter() - started
    for sess in sessions:
        sess.close()
    return elapsed, errors


def one_round(server, repos: list[str], tags: list[str], concurrency: int, offset: int) -> dict:
    config, layer = base_blobs()
    with requests.Session() as sess:
        sess.trust_env = False
        for repo in repos:
            push_blob(sess, server.url, repo, config, 60)
            push_blob(sess, server.url, repo, layer, 60)
    row = {}
    for op, base in (("push", offset), ("move", offset + 500_000)):  # a move: the same tag, the same repository
        cpu0 = proc_tree_cpu_seconds(server.pgid)
        items = [(base + i, t, repos[i % len(repos)]) for i, t in enumerate(tags)]
        elapsed, errors = push_all(server.url, items, concurrency, config, layer)
        cpu1 = proc_tree_cpu_seconds(server.pgid)
        row[op] = {"per_second": len(tags) / elapsed, "seconds": elapsed, "errors": errors,
                   "cpu_ms_per_put": (cpu1 - cpu0) * 1000 / len(tags) if cpu0 is not None and cpu1 is not None
                   else None}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=500, help="tags per round (default 500)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per side, alternating (default 4)")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers for ours (default 4)")
    ap.add_argument("--repos", type=int, default=1,
                    help="spread the tags over this many repositories (default 1: all in one, as CI pushes)")
    ap.add_argument("--ours-binary", default=OURS_BINARY)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    tags = generated_tags(args.tags)
    rows: dict[str, list[dict]] = {"ours": [], "peer": []}
    with peer_registry() as peer, ours_registry(workers=args.workers, binary=args.ours_binary) as ours:
        sides = {"ours": ours, "peer": peer}
        for r in range(args.rounds):
            for name in (["ours", "peer"] if r % 2 == 0 else ["peer", "ours"]):
                repos = [f"bench/push{r}" + (f"-{k}" if args.repos > 1 else "") for k in range(args.repos)]
                row = one_round(sides[name], repos, tags, args.concurrency, r * 1_000_000)
                rows[name].append(row)
                print(f"round {r} {name}: " + ", ".join(
                    f"{op} {v['per_second']:.0f}/s ({v['cpu_ms_per_put']:.2f} ms cpu/put, {v['errors']} errors)"
                    for op, v in row.items()), flush=True)
    summary = {}
    for op in ("push", "move"):
        ours_rates = [r[op]["per_second"] for r in rows["ours"]]
        peer_rates = [r[op]["per_second"] for r in rows["peer"]]
        ratios = sorted(o / p for o, p in zip(ours_rates, peer_rates))
        summary[op] = {"ours_median": statistics.median(ours_rates), "peer_median": statistics.median(peer_rates),
                       "ratio_of_medians": statistics.median(ours_rates) / statistics.median(peer_rates),
                       "ratio_per_round": ratios}
        print(f"{op}: ours {summary[op]['ours_median']:.0f}/s, peer {summary[op]['peer_median']:.0f}/s,"
              f" ours/peer {summary[op]['ratio_of_medians']:.2f} (per round {ratios[0]:.2f}-{ratios[-1]:.2f})")
    commit = short_commit()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"manifest_push-{commit}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"commit": commit, "tags": args.tags, "concurrency": args.concurrency, "workers": args.workers,
                   "repos": args.repos,
                   "rows": rows, "summary": summary}, fh, indent=1)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
