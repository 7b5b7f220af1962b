"""One-shot benchmark: ours (registry-ext) vs peer (Debian docker-registry, distribution 2.8).

1. starts both servers on free loopback ports with temporary data dirs (peer.py),
2. populates both with the same N manifests/tags (populate.py; one after the other, never concurrently),
3. times tags/list, tags/list?n=100, manifest GET and HEAD by tag on both sides (tags_list.py),
4. prints Markdown tables (push rate, reads, correctness notes), writes JSON to bench/results/,
5. stops both servers and removes the temporary data.

Defaults (N=1000, 10 s per operation per side, 5 operations) take about 2-3 minutes on 2 cores.

Examples::

    python -m bench.run_all                       # N=1000
    python -m bench.run_all --tags 10000          # N=10000 (populating takes longer)
    python -m bench.run_all --peer-only           # harness self-test: a second docker-registry plays "ours"
    python -m bench.run_all --from-history        # real tag names from the official-images history
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench import peer as peer_mod
from bench import populate as populate_mod
from bench import tags_list as tags_mod
from bench._common import (RESULTS_DIR, dir_size_mb, fmt_num, proc_tree_cpu_seconds, proc_tree_rss_mb,
                     wait_for_quiet)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ours_version(binary: str) -> str:
    py = os.path.join(os.path.dirname(binary), "python")
    try:
        out = subprocess.run([py, "-c", "import registry_ext; print(registry_ext.__version__)"],
                             capture_output=True, text=True, timeout=30)
        ver = out.stdout.strip() or out.stderr.strip()[-200:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        ver = f"unknown ({exc})"
    try:
        rev = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain", "--", "registry_ext"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        rev += " + uncommitted registry_ext changes" if dirty else ""
    except (OSError, subprocess.TimeoutExpired):
        rev = "unknown"
    return f"registry-ext {ver} (git {rev})"


def push_table(pop: dict) -> str:
    o, p = pop["ours"], pop["peer"]
    rat = (o["manifests_per_second"] / p["manifests_per_second"]
           if o.get("manifests_per_second") and p.get("manifests_per_second") else None)
    return _push_table(o, p, rat)


def _push_table(o: dict, p: dict, rat) -> str:
    head = ("| operation | ours manifests/s | peer manifests/s | **ours/peer** | ours srv CPU ms/put "
            "| peer srv CPU ms/put | ours errors | peer errors |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    row = (f"| `manifest_put` (populate: {o['tags']} tags, {o['concurrency']} threads) "
           f"| {fmt_num(o['manifests_per_second'])} | {fmt_num(p['manifests_per_second'])} "
           f"| {f'**{rat:.2f}**' if rat is not None else 'n/a'} "
           f"| {fmt_num(o.get('server_cpu_ms_per_put'), 2)} | {fmt_num(p.get('server_cpu_ms_per_put'), 2)} "
           f"| {o['errors']} | {p['errors']} |")
    return head + "\n" + row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=1000, help="N manifests/tags pushed to each side (default 1000)")
    ap.add_argument("--repo", default="bench/app", help="repository (default bench/app)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per operation per side (default 10)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads for the timings (default 4)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternating rounds, ours/peer then peer/ours, ... (default 4)")
    ap.add_argument("--populate-concurrency", type=int, default=8, help="pusher threads (default 8)")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers for ours (default 4)")
    ap.add_argument("--redis-url", default=None, help="ours: external redis instead of the embedded one")
    ap.add_argument("--ours-binary", default=peer_mod.OURS_BINARY, help="registry-ext executable")
    ap.add_argument("--ours-arg", action="append", default=[], help="extra argument for `registry-ext serve`"
                    " (repeatable)")
    ap.add_argument("--peer-only", action="store_true",
                    help="harness self-test: run a second docker-registry in place of ours (ratios should be ~1)")
    ap.add_argument("--from-history", action="store_true", help="tag names from the official-images history")
    ap.add_argument("--image", default=None, help="with --from-history: one image's tags only (e.g. php)")
    ap.add_argument("--ops", default=",".join(tags_mod.OPERATIONS), help="operations to time")
    ap.add_argument("--wait-quiet", type=float, default=60,
                    help="before populating and before timing, wait up to this many seconds for the machine to"
                         " be idle (busy < 0.3 cores); 0 = don't wait (default 60)")
    ap.add_argument("--keep-data", action="store_true", help="do not delete the temp data dirs")
    ap.add_argument("--label", default=None, help="label for the results file (default n<N>)")
    ap.add_argument("--max-seconds", type=float, default=1800, help="give up populating after this long")
    args = ap.parse_args(argv)
    label = args.label or (f"n{args.tags}" + ("-peeronly" if args.peer_only else ""))
    t_begin = time.monotonic()

    tags = (populate_mod.history_tags(args.tags, args.image) if args.from_history
            else populate_mod.generated_tags(args.tags))
    meta = {
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "kernel": platform.release(),
                    "python": platform.python_version()},
        "peer_version": peer_mod.peer_version(),
        "ours_version": ("docker-registry (peer-only self-test)" if args.peer_only
                         else ours_version(args.ours_binary)),
        "ours_workers": None if args.peer_only else args.workers,
        "argv": sys.argv,
        "tag_source": f"history:{args.image or 'all'}" if args.from_history else "generated 1.x.y[-alpine]",
    }
    print(f"# bench: N={args.tags}, repo {args.repo}, {meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model']})",
          file=sys.stderr)
    print(f"# peer: {meta['peer_version']}\n# ours: {meta['ours_version']}", file=sys.stderr)

    servers = {}
    results = {"label": label, "meta": meta}
    try:
        servers["peer"] = peer_mod.start_peer()
        if args.peer_only:
            servers["ours"] = peer_mod.start_peer()
        else:
            servers["ours"] = peer_mod.start_ours(workers=args.workers, redis_url=args.redis_url,
                                                  binary=args.ours_binary, extra_args=args.ours_arg)
        for name in ("peer", "ours"):
            s = servers[name]
            print(f"# {name}: {s.url} pid {s.proc.pid}: {' '.join(s.argv)}", file=sys.stderr)
        meta["ours_argv"] = servers["ours"].argv
        meta["peer_argv"] = servers["peer"].argv
        results["idle_rss_mb"] = {n: proc_tree_rss_mb(s.pgid) for n, s in servers.items()}

        if args.wait_quiet > 0:
            meta["quiet_before_populate"] = wait_for_quiet(args.wait_quiet)
            print(f"# machine idle check: {meta['quiet_before_populate']}", file=sys.stderr, flush=True)
        pop = {}
        for name in ("peer", "ours"):
            print(f"# populating {name} with {len(tags)} manifests ...", file=sys.stderr, flush=True)
            c0 = proc_tree_cpu_seconds(servers[name].pgid)
            pop[name] = populate_mod.populate(servers[name].url, args.repo, tags, args.populate_concurrency,
                                              quiet=True, max_seconds=args.max_seconds)
            c1 = proc_tree_cpu_seconds(servers[name].pgid)
            pop[name]["server_cpu_ms_per_put"] = ((c1 - c0) * 1000 / pop[name]["pushed"]
                                                  if c0 is not None and c1 is not None and pop[name]["pushed"]
                                                  else None)
            print(f"#   {pop[name]['pushed']}/{len(tags)} in {pop[name]['manifest_seconds']:.1f}s = "
                  f"{pop[name]['manifests_per_second']}/s, errors {pop[name]['errors']}"
                  f" {pop[name]['error_samples'][:2]}", file=sys.stderr, flush=True)
        results["populate"] = pop

        if args.wait_quiet > 0:
            meta["quiet_before_timing"] = wait_for_quiet(args.wait_quiet)
            print(f"# machine idle check: {meta['quiet_before_timing']}", file=sys.stderr, flush=True)
        print(f"# timing {args.ops} for {args.duration}s per side each, concurrency {args.concurrency} ...",
              file=sys.stderr, flush=True)
        ops = [o.strip() for o in args.ops.split(",") if o.strip()]
        timing = tags_mod.run(tags_mod.Side("ours", servers["ours"].url, servers["ours"].pgid),
                              tags_mod.Side("peer", servers["peer"].url, servers["peer"].pgid),
                              args.repo, args.duration, args.concurrency, args.rounds, ops=ops, label=label,
                              meta=meta)
        results["timing"] = timing
        results["rss_mb_after"] = {n: proc_tree_rss_mb(s.pgid) for n, s in servers.items()}
        results["data_mb"] = {n: dir_size_mb(s.data_dir) for n, s in servers.items()}
        results["alive_at_end"] = {n: s.alive() for n, s in servers.items()}
        results["log_tail"] = {n: s.log_tail(20) for n, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop(keep_data=args.keep_data)
    results["total_seconds"] = round(time.monotonic() - t_begin, 1)

    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"run_all-{label}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2, default=str)

    print(f"## N={args.tags} tags, concurrency {args.concurrency}, {args.duration:g}s per operation per side"
          f" ({'peer-only self-test' if args.peer_only else f'ours: {args.workers} gunicorn workers'})\n")
    print(push_table(results["populate"]))
    print()
    print(tags_mod.markdown(results["timing"]))
    print()
    for line in tags_mod.notes(results["timing"]):
        print(f"- {line}")
    print(f"- server RSS MiB idle -> after: ours {fmt_num(results['idle_rss_mb']['ours'])} -> "
          f"{fmt_num(results['rss_mb_after']['ours'])}, peer {fmt_num(results['idle_rss_mb']['peer'])} -> "
          f"{fmt_num(results['rss_mb_after']['peer'])}; data on disk MiB: ours {fmt_num(results['data_mb']['ours'])},"
          f" peer {fmt_num(results['data_mb']['peer'])}")
    for name, alive in results["alive_at_end"].items():
        if not alive:
            print(f"- {name} HAD EXITED by the end of the run; log tail:\n{results['log_tail'][name]}")
    print(f"\ntotal {results['total_seconds']}s; JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
