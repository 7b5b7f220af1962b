"""Two hosts against one on the same S3 bucket (Ceph RGW) under the same mixed load: what cross-host
coordination costs in CPU per request (the issue's bar: at most 10% more).

Every configuration is ``registry-ext serve`` processes on the same 2 cores, as many in each, with one
``redis-server`` (as docs/deployment.md's several hosts):

- ``1host``: one ``serve --workers 2``;
- ``2hosts``: two ``serve --workers 1`` (each its own gunicorn master and data dir) on one bucket and one
  key prefix: one registry, the client alternating between the hosts request by request;
- ``2regs``, the control: the same two processes as two registries apart (a bucket and a key prefix
  each), the client alternating alike. gunicorn lets one worker of a host take nearly all keep-alive
  connections (docs/benchmarks.md "Connection split between workers"), so ``1host`` runs its load in one
  busy process where the others run it in two; ``2hosts`` against ``2regs`` is the sharing alone.

Content, pushed over HTTP before the rounds into both buckets: ``--read-repos`` (4) repositories of
``--read-tags`` (25) tags, and the config and layer blobs in each of the ``--push-repos`` (4) repositories
pushes go to. Each of ``--rounds`` (3) rounds starts each configuration afresh (order rotating and
alternating), runs the load for ``--warmup`` (3) s unmeasured, then ``--seconds`` (20) s measured. The
load: ``--clients`` (8) threads, keep-alive connections (``http.client``) to each host, each thread cycling
through the same 40-request mix: 16 manifest ``GET`` and 10 ``HEAD`` by tag, 6 ``tags/list``, 7 blob
``HEAD``, 1 manifest ``PUT`` of a new tag (into the push repositories in turn). After each measured window
every tag pushed in it is read back from every host of its registry (``HEAD`` by tag: the digest must
match) and must be in each one's ``tags/list``.

Figures per configuration (medians over the rounds): requests/s; CPU ms per request of the serve process
trees (utime+stime from /proc, before/after the window), of the redis-server and of the Ceph daemons; S3
requests per request (RGW's access log, bench/_s3_log.py); the busiest serve process's share of the
serve CPU; and the CPU per request of each configuration against the others, per round.

    .venv/bin/python -m bench.hosts_s3                          # 3 rounds x 3 configurations: ~5-6 minutes
    .venv/bin/python -m bench.hosts_s3 --rounds 1 --seconds 8   # quick

JSON: ``bench/results/hosts_s3-<commit>-<time>.json``. Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import statistics
import tempfile
import threading
import time

import requests

from bench._common import MANIFEST_ACCEPT, FastClient, proc_tree_cpu_seconds, short_commit, wait_for_quiet
from bench._s3_log import attribute
from bench._s3_setup import (default_ours_binary, pids_cpu_seconds, private_redis, rgw, rgw_log, rgw_pids,
                             start_ours_s3, stop_ours)
from bench.manifest_push import push_all
from bench.populate import OCI_MANIFEST, base_blobs, generated_tags, manifest_for, push_blob, sha256

# workers of each host, and whether the hosts share one registry (bucket and Redis keys) or are two apart
CONFIGS = {"1host": ([2], True), "2hosts": ([1, 1], True), "2regs": ([1, 1], False)}
MIX = ["get"] * 16 + ["head"] * 10 + ["list"] * 6 + ["blob"] * 7 + ["put"]


class Content:
    """What the load reads and where it pushes."""

    def __init__(self, read_repos: int, read_tags: int, push_repos: int):
        self.reads = [(f"bench/hread{r}", t) for r in range(read_repos) for t in generated_tags(read_tags)]
        self.read_repos = [f"bench/hread{r}" for r in range(read_repos)]
        self.push_repos = [f"bench/hpush{r}" for r in range(push_repos)]
        self.config, self.layer = base_blobs()

    def seed(self, url: str, threads: int) -> None:
        with requests.Session() as sess:
            sess.trust_env = False
            for repo in self.read_repos + self.push_repos:
                push_blob(sess, url, repo, self.config, 60)
                push_blob(sess, url, repo, self.layer, 60)
        items = [(i, tag, repo) for i, (repo, tag) in enumerate(self.reads)]
        _elapsed, errors = push_all(url, items, threads, self.config, self.layer)
        if errors:
            raise SystemExit(f"seeding: {errors} manifest pushes failed")


class Load:
    """``clients`` threads cycling through ``MIX`` against ``urls`` (alternating), counting per kind."""

    def __init__(self, content: Content, urls: list[str], label: str):
        self.content, self.urls, self.label = content, urls, label
        self.counts: dict[str, int] = dict.fromkeys(set(MIX), 0)
        self.errors: list[str] = []
        self.pushed: list[tuple[int, str, str, str]] = []     # (host, repo, tag, digest)
        self.lock = threading.Lock()
        self.stop_at = 0.0
        self.measuring = False

    def run(self, clients: int, warmup: float, seconds: float, on_measure) -> tuple[float, dict]:
        """Warm up, call ``on_measure()`` (it returns a finisher), measure; (seconds measured, kinds)."""
        self.stop_at = time.monotonic() + warmup + seconds + 3600
        with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as ex:
            futures = [ex.submit(self.worker, k, clients) for k in range(clients)]
            time.sleep(warmup)
            with self.lock:
                self.counts = dict.fromkeys(self.counts, 0)
                self.measuring = True
            finish = on_measure()
            started = time.perf_counter()
            time.sleep(seconds)
            with self.lock:
                self.measuring = False
                counts = dict(self.counts)
            elapsed = time.perf_counter() - started
            finish()
            self.stop_at = 0.0
            for f in futures:
                f.result()
        return elapsed, counts

    def worker(self, k: int, clients: int) -> None:
        clients_by_host = [FastClient(u) for u in self.urls]
        try:
            for i in range(10_000_000):                     # bounded; stop_at ends it
                if time.monotonic() > self.stop_at:
                    break
                op = MIX[(i * 7 + k) % len(MIX)]
                host = (i + k + i // len(MIX)) % len(self.urls)          # every op on every host
                ok = self.one(clients_by_host[host], op, k, i, host)
                with self.lock:
                    if self.measuring:
                        self.counts[op] += 1
                    if not ok:
                        self.errors.append(op)
        finally:
            for client in clients_by_host:
                client.close()

    def one(self, client: FastClient, op: str, k: int, i: int, host: int) -> bool:
        c = self.content
        repo, tag = c.reads[(i * 13 + k * 101) % len(c.reads)]
        if op in ("get", "head"):
            status, _b, _h = client.request(op.upper(), f"/v2/{repo}/manifests/{tag}", {"Accept": MANIFEST_ACCEPT})
            return status == 200
        if op == "list":
            return client.request("GET", f"/v2/{repo}/tags/list")[0] == 200
        if op == "blob":
            digest = sha256(c.layer if i % 2 else c.config)
            return client.request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200
        repo, tag = c.push_repos[(i // len(MIX) + k) % len(c.push_repos)], f"{self.label}.{k}.{i}"
        body = manifest_for(tag, i, c.config, c.layer)
        status, _b, _h = client.request("PUT", f"/v2/{repo}/manifests/{tag}", {"Content-Type": OCI_MANIFEST}, body)
        if status == 201:
            with self.lock:
                self.pushed.append((host, repo, tag, sha256(body)))
        return status == 201


def verify(urls: list[str], pushed: list[tuple[int, str, str, str]], shared: bool) -> dict:
    """Every pushed tag from every host (``shared``; else from the one it was pushed to): HEAD by tag
    gives its digest, and tags/list holds it."""
    lost = []
    for h, url in enumerate(urls):
        client = FastClient(url)
        mine = [p[1:] for p in pushed if shared or p[0] == h]
        try:
            listed = {}
            for repo in sorted({p[0] for p in mine}):
                status, body, _h = client.request("GET", f"/v2/{repo}/tags/list")
                listed[repo] = set(json.loads(body).get("tags") or []) if status == 200 else set()
            for repo, tag, digest in mine:
                status, _b, headers = client.request("HEAD", f"/v2/{repo}/manifests/{tag}",
                                                     {"Accept": MANIFEST_ACCEPT})
                if status != 200 or headers.get("Docker-Content-Digest") != digest or tag not in listed[repo]:
                    lost.append((url, repo, tag, status))
        finally:
            client.close()
    return {"pushed": len(pushed), "hosts": len(urls), "lost": len(lost), "lost_sample": lost[:5]}


def pids_cpu(hosts) -> dict[int, float]:
    """CPU seconds of each process of the hosts' process groups (masters and workers), by PID."""
    pgids, out = {h.pgid for h in hosts}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    rest = fh.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[2]) in pgids:
                out[int(entry)] = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    return out


def one_config(name: str, r: int, s3, buckets: list[str], redis_url: str, redis_pid: int, content: Content,
               args) -> dict:
    """Start ``name``'s hosts, run the load, read back the pushes, stop them; the figures. Hosts of one
    registry share ``buckets[0]`` and the default key prefix; apart, the second has ``buckets[1]``."""
    hosts = []
    workers_each, shared = CONFIGS[name]
    try:
        for h, workers in enumerate(workers_each):
            apart = not shared and h > 0
            hosts.append(start_ours_s3(s3, buckets[apart], False, workers, args.ours_binary, redis_url=redis_url,
                                       key_prefix="other" if apart else None))
        label = str(100 + len(CONFIGS) * r + list(CONFIGS).index(name))     # tags unique across the runs
        load = Load(content, [h.url for h in hosts], label)
        rgw = rgw_pids(s3)
        marks: dict = {}

        def cpu() -> tuple[float, float, float]:
            return (sum(proc_tree_cpu_seconds(h.pgid) or 0.0 for h in hosts),
                    pids_cpu_seconds([redis_pid]) or 0.0, pids_cpu_seconds(rgw) or 0.0)

        def on_measure():
            marks["cpu0"], marks["t0"], marks["pids0"] = cpu(), time.time(), pids_cpu(hosts)

            def finish():
                marks["cpu1"], marks["t1"], marks["pids1"] = cpu(), time.time(), pids_cpu(hosts)
            return finish

        elapsed, counts = load.run(args.clients, args.warmup, args.seconds, on_measure)
        checked = verify([h.url for h in hosts], load.pushed, shared)
    finally:
        for host in hosts:
            stop_ours(host)
    n = sum(counts.values())
    srv, red, rgw_cpu = (b - a for a, b in zip(marks["cpu0"], marks["cpu1"]))
    per_pid = sorted((marks["pids1"][p] - marks["pids0"].get(p, 0.0) for p in marks["pids1"]), reverse=True)
    return {"config": name, "round": r, "requests": n, "seconds": elapsed, "rate": n / elapsed, "kinds": counts,
            "srv_ms": srv * 1000 / n, "redis_ms": red * 1000 / n, "rgw_ms": rgw_cpu * 1000 / n,
            "busiest_share": per_pid[0] / srv if srv else 0.0, "process_cpu_s": per_pid,
            "errors": len(load.errors), "error_kinds": sorted(set(load.errors)), "verify": checked,
            "bucket": buckets[0], "t0": marks["t0"], "t1": marks["t1"], "count": n,
            "apart": None if shared else {"bucket": buckets[1], "t0": marks["t0"], "t1": marks["t1"]}}


def count_s3(log_path: str, rows: list[dict]) -> None:
    """S3 requests of each row's window (bench/_s3_log.py), on both buckets when the hosts are apart."""
    aparts = [row["apart"] for row in rows if row["apart"]]
    attribute(log_path, rows + aparts)
    for row in rows:
        if row["apart"]:
            kinds = collections.Counter({k: n for k, n, _l in row["s3_kinds"]})
            kinds.update({k: n for k, n, _l in row["apart"]["s3_kinds"]})
            row["s3_requests"] += row["apart"]["s3_requests"]
            row["s3_kinds"] = [(k, n, 0.0) for k, n in kinds.most_common(16)]


def summarize(rows: list[dict]) -> dict:
    out = {}
    for name in CONFIGS:
        mine = [r for r in rows if r["config"] == name]
        out[name] = {k: statistics.median(r[k] for r in mine)
                     for k in ("rate", "srv_ms", "redis_ms", "rgw_ms", "busiest_share")}
        out[name]["s3_per_request"] = statistics.median(r["s3_requests"] / r["requests"] for r in mine)
        out[name]["errors"] = sum(r["errors"] for r in mine)
        out[name]["pushed"] = sum(r["verify"]["pushed"] for r in mine)
        out[name]["lost"] = sum(r["verify"]["lost"] for r in mine)
    by_round = {(r["config"], r["round"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})
    for a, b in (("1host", "2hosts"), ("2regs", "2hosts"), ("1host", "2regs")):
        out[f"{b}_vs_{a}"] = {
            "cpu_per_request": out[b]["srv_ms"] / out[a]["srv_ms"] - 1, "rate": out[b]["rate"] / out[a]["rate"],
            "cpu_rounds": [by_round[(b, r)]["srv_ms"] / by_round[(a, r)]["srv_ms"] - 1 for r in rounds]}
    return out


def print_report(summary: dict, rows: list[dict]) -> None:
    print("\n| configuration | requests/s | serve CPU ms/request | redis ms/request | RGW ms/request |"
          " S3 requests/request | busiest process | pushes read back from every host (lost) | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in CONFIGS:
        s = summary[name]
        print(f"| {name} | {s['rate']:.0f} | {s['srv_ms']:.2f} | {s['redis_ms']:.2f} | {s['rgw_ms']:.2f} |"
              f" {s['s3_per_request']:.2f} | {s['busiest_share']:.0%} | {s['pushed']} ({s['lost']}) | {s['errors']} |")
    for key in ("2hosts_vs_1host", "2hosts_vs_2regs", "2regs_vs_1host"):
        d = summary[key]
        rounds = ", ".join(f"{x:+.1%}" for x in d["cpu_rounds"])
        print(f"{key}: serve CPU per request {d['cpu_per_request']:+.1%} (rounds: {rounds}), requests/s"
              f" x{d['rate']:.2f}")
    for row in rows:
        kinds = "; ".join(f"{n / row['requests']:.2f} {k}" for k, n, _l in row.get("s3_kinds", [])[:8])
        procs = "/".join(f"{c:.1f}" for c in row["process_cpu_s"])
        print(f"  round {row['round']} {row['config']}: {row['rate']:.0f}/s, {row['srv_ms']:.2f} ms, process CPU s"
              f" {procs}; S3: {kinds}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each running every configuration (default 3)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per configuration (default 20)")
    ap.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of load first (default 3)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--read-repos", type=int, default=4)
    ap.add_argument("--read-tags", type=int, default=25, help="tags per read repository (default 25)")
    ap.add_argument("--push-repos", type=int, default=4)
    ap.add_argument("--ours-binary", default=default_ours_binary())
    ap.add_argument("--keep-s3", action="store_true", help="leave RGW running (its log under /tmp/bench-s3-*)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/hosts_s3-...)")
    args = ap.parse_args(argv)

    content = Content(args.read_repos, args.read_tags, args.push_repos)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-hosts-") as work, rgw(10, args.keep_s3) as s3, \
            private_redis(work) as (redis_url, redis_proc):
        buckets = [s3.new_bucket("hosts"), s3.new_bucket("apart")]
        for bucket, key_prefix in zip(buckets, (None, "other")):
            seeder = start_ours_s3(s3, bucket, False, 2, args.ours_binary, redis_url=redis_url, key_prefix=key_prefix)
            try:
                content.seed(seeder.url, 8)
            finally:
                stop_ours(seeder)
        quiet = wait_for_quiet(15)
        print(f"RGW {s3.endpoint}; seeded {len(content.reads)} tags; machine quiet: {quiet}", flush=True)
        for r in range(args.rounds):
            order = list(CONFIGS)[r % len(CONFIGS):] + list(CONFIGS)[:r % len(CONFIGS)]
            for name in (order if r % 2 == 0 else order[::-1]):
                row = one_config(name, r, s3, buckets, redis_url, redis_proc.pid, content, args)
                rows.append(row)
                print(f"round {r} {name}: {row['rate']:.0f} req/s, serve {row['srv_ms']:.2f} ms/req, "
                      f"pushes {row['verify']}, errors {row['errors']}", flush=True)
        time.sleep(1.0)                                         # RGW writes its log asynchronously
        count_s3(rgw_log(s3), rows)
    summary = summarize(rows)
    print_report(summary, rows)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"hosts_s3-{short_commit()}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"commit": short_commit(), "args": vars(args), "quiet": quiet, "loadavg": os.getloadavg(),
                   "rows": rows, "summary": summary}, fh, indent=1)
    print(f"results: {out}")
    failed = any(summary[n]["lost"] or summary[n]["errors"] for n in CONFIGS)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
