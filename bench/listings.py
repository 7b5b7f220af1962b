"""Enriched listings at scale: registry-ext's sorted 100-tag pages, ``newer`` answers and Redis memory,
against Debian's ``docker-registry`` (distribution 2.8) answering the plain ``tags/list``.

One run starts both servers (peer.py; ours = ``registry-ext serve`` with its default workers/threads and
embedded Redis), pushes the same release-history tags (``populate.version_tags``: ``M.m.p``, ``-alpine``,
``-slim``, ``-rc.N``, ``M.m``, commit hashes, ``latest`` ...) into one repository per size (default 100,000
and 1,000 tags, plus 10,000 for the bytes comparison) on each side, checks the answers (untimed), then:

1. **scale**: median/p95 of ``_regext/tags?sort=semver&order=desc&n=100`` (``semver_top``), the same with
   ``last=<the plain version in the middle of the order>`` (``semver_deep``) and
   ``sort=updated&order=desc&n=100`` (``updated_top``), plus ``kind=release`` and the index-shaped
   ``tags/list?sort_by=semver&sort_order=desc&n=100``, at the big and the small size, concurrency 1 and 4,
   rounds alternating the two sizes. Target: big median <= 2x small median.
2. **vs peer**: throughput of ``semver_top``/``updated_top`` at the big size against the peer's full plain
   ``tags/list`` of the same repository (every tag in one response). Target >= 10x.
3. **bytes**: ``_regext/tags/1.2.3/newer`` (default n, and a sweep of n) against a full plain ``tags/list``
   at 10,000 tags. Target <= 2 %.
4. **memory**: ``INFO memory`` ``used_memory`` before/after populating each repository, and ``MEMORY USAGE``
   of every key (``redis-cli --scan``), per tag and per key type.
5. **populate**: manifests/s of both sides (8 threads, one side at a time).

Before each timed group the script waits for a quiet machine; a group during which other processes used more
than ``--busy-limit`` cores is measured again (``--retries``). Markdown on stdout, JSON (and the Markdown)
under bench/results/. Examples::

    python -m bench.listings                 # 100,000 / 1,000 tags (+ 10,000 for bytes): ~30-35 minutes
    python -m bench.listings --small         # 10,000 / 1,000 tags: ~6 minutes
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench import peer as peer_mod
from bench import populate as populate_mod
from bench import listings_checks as checks_mod
from bench import listings_report as report_mod
from bench.tags_list_ops import summarize, timed_run
from bench._common import (OCI_INDEX, RESULTS_DIR, SessionPool, dir_size_mb, proc_tree_cpu_seconds,
                     proc_tree_rss_mb, redis_info_memory, redis_key_usage, system_busy_seconds,
                     wait_for_quiet)

NEWER_TAG = checks_mod.NEWER_TAG
SCALE_OPS = ["semver_top", "semver_deep", "updated_top", "semver_release", "index_semver"]
NEWER_SWEEP = [0, 1, 2, 5, 10, 12, 14, 15, 16, 17, 18, 19, 20, 25, 50, 100]


def op_request(op: str, repo: str, mid: str | None) -> tuple[str, dict, str | None]:
    """(path, headers, JSON field holding the items or None = count commas of a plain tags/list)."""
    b = f"/v2/{repo}"
    return {
        "semver_top": (f"{b}/_regext/tags?sort=semver&order=desc&n=100", {}, "tags"),
        "semver_deep": (f"{b}/_regext/tags?sort=semver&order=desc&n=100&last={mid}", {}, "tags"),
        "updated_top": (f"{b}/_regext/tags?sort=updated&order=desc&n=100", {}, "tags"),
        "semver_release": (f"{b}/_regext/tags?sort=semver&order=desc&kind=release&n=100", {}, "tags"),
        "index_semver": (f"{b}/tags/list?sort_by=semver&sort_order=desc&n=100", {"Accept": OCI_INDEX},
                         "manifests"),
        "newer": (f"{b}/_regext/tags/{NEWER_TAG}/newer", {}, "newer"),
        "plain_full": (f"{b}/tags/list", {}, None),
    }[op]


def make_fn(path: str, headers: dict, field: str | None):
    def run(cl, rng):
        status, body, _ = cl.request("GET", path, headers)
        if status != 200:
            return False, len(body), None
        # a plain tags/list is {"name":"...","tags":["a",...]}: one comma per tag; not parsed, so that
        # decoding a 1 MB body does not slow the client down
        count = body.count(b",") if field is None else len(json.loads(body).get(field) or [])
        return True, len(body), {"tags": count, "pages": 1}
    return run


class Cell:
    def __init__(self, name: str, server, size: int, op: str, repo: str, mid: str | None):
        self.name, self.server, self.size, self.op = name, server, size, op
        path, headers, field = op_request(op, repo, mid)
        self.path = path
        self.fn = make_fn(path, headers, field)


def run_group(label: str, cells: list[Cell], concurrency: int, args) -> dict:
    """Time ``cells`` in alternating rounds; re-run the whole group while other processes were busy."""
    attempts = []
    for attempt in range(args.retries + 1):
        left = args.deadline - time.monotonic()
        if attempt and left < 0:
            break                                  # out of --budget: keep the quietest attempt so far
        quiet = wait_for_quiet(min(args.wait_quiet, max(left, 5))) if args.wait_quiet > 0 else None
        runs = {c.name: [] for c in cells}
        cpu = {c.name: 0.0 for c in cells}
        for rnd in range(args.rounds):
            for c in (cells if rnd % 2 == 0 else list(reversed(cells))):
                warm = 3 if c.op == "plain_full" else args.warmup
                c0 = proc_tree_cpu_seconds(c.server.pgid)
                r = timed_run(c.fn, c.server.url, concurrency, args.duration / args.rounds, args.seed + rnd,
                              warm, args.timeout)
                c1 = proc_tree_cpu_seconds(c.server.pgid)
                cpu[c.name] = None if (c0 is None or c1 is None or cpu[c.name] is None) else cpu[c.name] + c1 - c0
                runs[c.name].append(r)
        summ = {c.name: summarize(runs[c.name], cpu[c.name]) for c in cells}
        for c in cells:
            summ[c.name].update({"side": c.server.kind, "size": c.size, "op": c.op, "path": c.path})
        worst = max((s.get("other_cpu_share") or 0.0) for s in summ.values())
        attempts.append({"attempt": attempt, "quiet_wait": quiet, "max_other_cpu": round(worst, 3),
                         "cells": summ})
        print(f"  {label} c={concurrency} attempt {attempt}: " + "; ".join(
            f"{n} {s['ops_per_s']:.1f}/s p50 {s['p50_ms'] or float('nan'):.2f} ms" for n, s in summ.items())
            + f"; other CPU {worst:.2f} cores", file=sys.stderr, flush=True)
        if worst <= args.busy_limit:
            break
    best = min(attempts, key=lambda a: a["max_other_cpu"])
    return {"label": label, "concurrency": concurrency, "cells": best["cells"], "chosen_attempt":
            best["attempt"], "attempts": [{k: v for k, v in a.items() if k != "cells"} for a in attempts],
            "all_attempt_cells": [a["cells"] for a in attempts] if len(attempts) > 1 else None}


def populate_side(server, repo: str, tags: list[str], args) -> dict:
    quiet = wait_for_quiet(args.wait_quiet) if args.wait_quiet > 0 else None
    c0, b0, p0, t0 = (proc_tree_cpu_seconds(server.pgid), system_busy_seconds(), time.process_time(),
                      time.perf_counter())
    summary = populate_mod.populate(server.url, repo, tags, args.populate_concurrency, quiet=True,
                                    max_seconds=args.max_seconds)
    wall = time.perf_counter() - t0
    c1, b1, p1 = proc_tree_cpu_seconds(server.pgid), system_busy_seconds(), time.process_time()
    srv = (c1 - c0) if c0 is not None and c1 is not None else None
    summary.update({"quiet_wait": quiet, "wall_seconds": round(wall, 2),
                    "server_cpu_ms_per_put": srv * 1000 / summary["pushed"] if srv and summary["pushed"] else None,
                    "server_cpu_share": srv / wall if srv is not None else None,
                    "client_cpu_share": (p1 - p0) / wall})
    if b0 is not None and srv is not None:
        summary["other_cpu_share"] = max(0.0, (b1 - b0) / wall - srv / wall - (p1 - p0) / wall)
    print(f"#   {server.kind} {repo}: {summary['pushed']}/{len(tags)} in {summary['manifest_seconds']:.1f}s ="
          f" {summary['manifests_per_second']}/s, errors {summary['errors']} {summary['error_samples'][:2]},"
          f" other CPU {summary.get('other_cpu_share', float('nan')):.2f} cores", file=sys.stderr, flush=True)
    return summary


def already_there(server, repo: str, tags: list[str], timeout: float) -> bool:
    """With --ours-data/--peer-data: does the repository already hold exactly these tags?"""
    sess = SessionPool().get()
    resp = sess.get(f"{server.url}/v2/{repo}/tags/list", timeout=timeout)
    return resp.status_code == 200 and set(resp.json().get("tags") or []) == set(tags)


def bytes_report(sess, ours, peer, repos: dict, newer_size: int, timeout: float) -> dict:
    """Target 3: newer answers against a full plain tags/list, by n, plus the default at every size."""
    out = {"newer_size": newer_size, "by_size": {}, "sweep": []}
    for size, repo in repos.items():
        plain = {s.kind: len(sess.get(f"{s.url}/v2/{repo}/tags/list", timeout=timeout).content)
                 for s in (ours, peer)}
        r = sess.get(f"{ours.url}/v2/{repo}/_regext/tags/{NEWER_TAG}/newer", timeout=timeout)
        body = r.json()
        out["by_size"][size] = {"plain_bytes": plain, "newer_bytes": len(r.content), "newer_status": r.status_code,
                                "newer_count": len(body.get("newer") or []), "complete": body.get("complete"),
                                "pct_of_ours_plain": 100.0 * len(r.content) / plain["ours"],
                                "pct_of_peer_plain": 100.0 * len(r.content) / plain["peer"]}
    base = out["by_size"][newer_size]["plain_bytes"]
    repo = repos[newer_size]
    for n in NEWER_SWEEP:
        r = sess.get(f"{ours.url}/v2/{repo}/_regext/tags/{NEWER_TAG}/newer?n={n}", timeout=timeout)
        out["sweep"].append({"n": n, "bytes": len(r.content), "count": len(r.json().get("newer") or []),
                             "pct_of_ours_plain": 100.0 * len(r.content) / base["ours"],
                             "pct_of_peer_plain": 100.0 * len(r.content) / base["peer"]})
    ok = [row["n"] for row in out["sweep"] if row["pct_of_ours_plain"] <= report_mod.TARGETS["bytes_pct"]]
    out["largest_n_within_target"] = max(ok) if ok else None
    return out


def memory_report(sock: str, snapshots: list[dict], repos: dict) -> dict:
    usage = redis_key_usage(sock)
    by_repo: dict = {}
    other = {"keys": 0, "bytes": 0}
    for key, typ, nbytes in usage:
        repo, pattern = checks_mod.classify_key(key)
        if repo is None:
            other["keys"] += 1
            other["bytes"] += nbytes
            continue
        row = by_repo.setdefault(repo, {}).setdefault(pattern, {"type": typ, "keys": 0, "bytes": 0})
        row["keys"] += 1
        row["bytes"] += nbytes
    sizes = {repo: size for size, repo in repos.items()}
    for repo, rows in by_repo.items():
        total = sum(r["bytes"] for r in rows.values())
        for r in rows.values():
            r["bytes_per_tag"] = r["bytes"] / sizes.get(repo, 1)
        rows["_total"] = {"type": "", "keys": sum(r["keys"] for r in rows.values()), "bytes": total,
                          "bytes_per_tag": total / sizes.get(repo, 1)}
    return {"snapshots": snapshots, "by_repo": by_repo, "other_keys": other, "keys_total": len(usage)}


def snapshot_ours(rev: str) -> tuple[str, str, str]:
    """Export commit ``rev`` of this repository (``git archive``) to a temp dir and write a ``registry-ext``
    wrapper running it with the project venv's interpreter and libraries: the measured code then cannot
    change under the run while others edit the working tree. Returns (wrapper, temp dir, full commit)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "-C", root, "rev-parse", "--verify", rev + "^{commit}"], capture_output=True,
                            text=True, timeout=30, check=True).stdout.strip()
    workdir = tempfile.mkdtemp(prefix="bench-src-")
    archive = subprocess.run(["git", "-C", root, "archive", commit], capture_output=True, timeout=120, check=True)
    subprocess.run(["tar", "-x", "-C", workdir], input=archive.stdout, timeout=120, check=True)
    python = os.path.join(root, ".venv", "bin", "python")
    wrapper = os.path.join(workdir, "registry-ext")
    with open(wrapper, "w") as fh:
        fh.write(f"#!/bin/sh\nPYTHONPATH={workdir} exec {python} -P -c 'import sys; from registry_ext.cli import main;"
                 f" sys.argv[0] = \"registry-ext\"; sys.exit(main())' \"$@\"\n")
    os.chmod(wrapper, 0o755)
    check = subprocess.run([python, "-P", "-c", "import registry_ext; print(registry_ext.__file__)"],
                           capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": workdir})
    if not check.stdout.startswith(workdir):
        shutil.rmtree(workdir, ignore_errors=True)
        raise SystemExit(f"the snapshot is not what gets imported: {check.stdout or check.stderr}")
    return wrapper, workdir, commit


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", default="100000,1000", help="BIG,SMALL tag counts (default 100000,1000)")
    ap.add_argument("--newer-tags", type=int, default=10000, help="repository size for the bytes target (10000)")
    ap.add_argument("--small", action="store_true", help="quick run: --tags 10000,1000 --newer-tags 10000")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per cell (default 10)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds per group (default 4)")
    ap.add_argument("--concurrency", default="1,4", help="client threads, comma-separated (default 1,4)")
    ap.add_argument("--ops", default=",".join(SCALE_OPS), help=f"scale operations (default {SCALE_OPS})")
    ap.add_argument("--populate-concurrency", type=int, default=8, help="pusher threads (default 8)")
    ap.add_argument("--workers", type=int, default=None, help="gunicorn workers for ours (default: serve's)")
    ap.add_argument("--wait-quiet", type=float, default=90, help="wait up to S s for an idle machine (0: never)")
    ap.add_argument("--busy-limit", type=float, default=0.3, help="re-run a group if others used more cores")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a busy group (default 2)")
    ap.add_argument("--budget", type=float, default=2400,
                    help="seconds after which busy groups are no longer re-run and quiet waits shrink (2400)")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured requests per run (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120.0, help="per-request timeout (default 120 s)")
    ap.add_argument("--max-seconds", type=float, default=1500, help="give up populating one side after this")
    ap.add_argument("--ours-commit", default=None, help="measure this commit of registry_ext (git archive to a"
                    " temp dir, run with the venv's libraries) instead of the working tree, e.g. HEAD")
    ap.add_argument("--label", default=None, help="label of the results files")
    ap.add_argument("--keep-data", action="store_true", help="do not delete the temp data dirs")
    ap.add_argument("--ours-data", default=None, help="ours' data dir (kept; repositories already holding"
                    " their tags are not pushed again: re-time without re-populating)")
    ap.add_argument("--peer-data", default=None, help="the peer's data dir (kept; same rule)")
    ap.add_argument("--newer-default", type=int, default=checks_mod.NEWER_DEFAULT_N,
                    help="the default n of newer that the checks expect (10; 20 before commit 2af08c4)")
    ap.add_argument("--report", default=None, metavar="JSON", help="only print the report of an earlier run")
    args = ap.parse_args(argv)
    if args.report:
        results = report_mod.load(args.report)
        report_mod.evaluate(results)
        print(report_mod.markdown(results))
        return 0
    if args.small:
        args.tags, args.newer_tags = "10000,1000", 10000
    big, small = (int(x) for x in args.tags.split(","))
    concs = [int(x) for x in args.concurrency.split(",")]
    ops = [o for o in args.ops.split(",") if o]
    label = args.label or f"n{big}-{small}"
    sizes = sorted({big, small, args.newer_tags})
    repos = {size: f"bench/t{size}" for size in sizes}
    t_begin = time.monotonic()
    args.deadline = t_begin + args.budget
    meta = report_mod.machine_meta()
    meta.update({"loadavg_start": os.getloadavg(), "argv": sys.argv, "big": big, "small": small,
                 "newer_size": args.newer_tags, "repos": repos, "tag_source": "populate.version_tags"})
    results: dict = {"label": label, "meta": meta, "populate": {}, "groups": []}
    servers: dict = {}
    binary, src_dir = peer_mod.OURS_BINARY, None
    if args.ours_commit:
        binary, src_dir, commit = snapshot_ours(args.ours_commit)
        meta["ours_version"] = f"registry-ext at commit {commit[:12]} (git archive; libraries of .venv)"
    try:
        servers["peer"] = peer_mod.start_peer(data_dir=args.peer_data)
        # start_ours always passes --workers: 4 is serve's default; --threads is not passed (default 4)
        servers["ours"] = peer_mod.start_ours(data_dir=args.ours_data, workers=args.workers or 4, binary=binary)
        ours, peer = servers["ours"], servers["peer"]
        sock = os.path.join(ours.data_dir, "redis", "redis.sock")
        meta.update({"ours_argv": ours.argv, "peer_argv": peer.argv})
        results["idle_rss_mb"] = {n: proc_tree_rss_mb(s.pgid) for n, s in servers.items()}
        snapshots = [{"after": None, **redis_info_memory(sock)}]
        for size in sizes:                                   # small first: the big one last
            tags = populate_mod.version_tags(size)
            pushed = False
            for side in ("peer", "ours"):
                if already_there(servers[side], repos[size], tags, args.timeout):
                    results["populate"][f"{side}/{size}"] = {"reused": True, "tags": len(tags)}
                    continue
                results["populate"][f"{side}/{size}"] = populate_side(servers[side], repos[size], tags, args)
                pushed = pushed or side == "ours"
            snapshots.append({"after": size if pushed else f"{size} (already there)", **redis_info_memory(sock)})
        sess = SessionPool().get()
        results["checks"] = {size: checks_mod.check_repo(sess, ours, peer, repos[size],
                                                         populate_mod.version_tags(size), args.timeout,
                                                         args.newer_default)
                             for size in sizes}
        mids = {size: results["checks"][size]["mid"] for size in sizes}
        results["bytes"] = bytes_report(sess, ours, peer, repos, args.newer_tags, args.timeout)
        results["memory"] = memory_report(sock, snapshots, repos)
        for conc in concs:
            for op in ops:
                cells = [Cell(f"ours@{s}", ours, s, op, repos[s], mids[s]) for s in (big, small)]
                results["groups"].append(run_group(op, cells, conc, args))
            cells = [Cell(f"ours@{big}:semver_top", ours, big, "semver_top", repos[big], mids[big]),
                     Cell(f"ours@{big}:updated_top", ours, big, "updated_top", repos[big], mids[big]),
                     Cell(f"peer@{big}:plain_full", peer, big, "plain_full", repos[big], None),
                     Cell(f"ours@{big}:plain_full", ours, big, "plain_full", repos[big], None)]
            results["groups"].append(run_group("vs_peer", cells, conc, args))
            cells = [Cell(f"ours@{s}", ours, s, "newer", repos[s], None) for s in sizes]
            results["groups"].append(run_group("newer", cells, conc, args))
        results["rss_mb_after"] = {n: proc_tree_rss_mb(s.pgid) for n, s in servers.items()}
        if not (args.ours_data or args.peer_data):      # walking 2 x 400k files takes minutes on a busy disk
            results["data_mb"] = {n: dir_size_mb(s.data_dir) for n, s in servers.items()}
        results["alive_at_end"] = {n: s.alive() for n, s in servers.items()}
        results["log_tail"] = {n: s.log_tail(20) for n, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop(keep_data=args.keep_data)
        if src_dir:
            shutil.rmtree(src_dir, ignore_errors=True)
    results["total_seconds"] = round(time.monotonic() - t_begin, 1)
    meta["loadavg_end"] = os.getloadavg()
    report_mod.evaluate(results)
    md = report_mod.markdown(results)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stem = os.path.join(RESULTS_DIR, f"listings-{label}-{time.strftime('%Y%m%d-%H%M%S')}")
    with open(stem + ".json", "w") as fh:
        json.dump(results, fh, indent=2, default=str)
    with open(stem + ".md", "w") as fh:
        fh.write(md + "\n")
    print(md)
    print(f"\ntotal {results['total_seconds']}s; JSON: {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
