"""Ours on S3 against the peer (CNCF distribution 2.8, Debian's ``docker-registry``) on S3: the same Ceph RGW,
one bucket each, in one run (servers: bench/_s3_setup.py).

Each round, on each side (order alternating: ours, peer, peer, ours, ...):

- ``push_put``: a fresh ``--blob-mib`` random blob, monolithic (``POST``, then ``PUT ?digest=`` with the
  whole body, as bench/blob_io.py); ``push_patch``: another one in ``PATCH``es of ``--chunk-mib`` (with
  ``Content-Range``), then an empty ``PUT ?digest=``. MiB/s from after the ``POST`` to the ``201``.
- ``pull_proxy``: ``GET`` of the first blob from the side's proxy process (bytes through the registry);
  ``pull_redirect``: ``GET`` of the second from its redirect process (``307`` to a presigned URL, followed
  by ``requests``). Both streamed in 1 MiB pieces and hashed (a mismatch stops the run).
- ``manifest_put``: ``--tags`` manifests ``PUT`` by tag into a fresh repository by ``--concurrency``
  threads (``requests``, its config and layer blobs pushed before, untimed; as bench/manifest_push.py);
- ``manifest_get``: ``GET`` of those manifests by tag, ``--seconds`` long, by ``--concurrency`` threads
  (``http.client``, keep-alive); ``tags_list``: ``GET tags/list`` of a 10-tag repository, the same way.

Server CPU: utime+stime of the side's two process groups; RGW CPU: the Ceph daemons' (mon, osd, radosgw),
the storage work each side causes. S3 requests: RGW's access lines in each step's time window, on the side's
bucket (bench/_s3_log.py), counted and classed by key shape. The machine's cores are shared by clients,
both registries and RGW.

    .venv/bin/python -m bench.s3                               # 256 MiB, 3 rounds: ~3-4 minutes
    .venv/bin/python -m bench.s3 --blob-mib 64 --rounds 2      # quick

JSON with every figure goes to ``bench/results/s3-<commit>-<time>.json``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import statistics
import tempfile
import time
from urllib.parse import urlsplit

import requests

from bench._common import MANIFEST_ACCEPT, FastClient, fmt_num, proc_tree_cpu_seconds, short_commit, wait_for_quiet
from bench._s3_log import attribute
from bench._s3_setup import default_ours_binary, pids_cpu_seconds, rgw_log, rgw_pids, s3_stack
from bench.blob_io import PIECE, REPO, make_blob, push
from bench.manifest_push import push_all
from bench.populate import base_blobs, generated_tags, push_blob

LIST_REPO = "bench/s3list"
BLOB_OPS = ("push_put", "push_patch", "pull_proxy", "pull_redirect")
MANIFEST_OPS = ("manifest_put", "manifest_get", "tags_list")


def push_chunked(url: str, path: str, digest: str, chunk: int) -> float:
    """POST, the file in PATCHes of ``chunk`` bytes, an empty PUT ?digest=; the seconds after the POST."""
    conn = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=300)
    try:
        conn.request("POST", f"/v2/{REPO}/blobs/uploads/", headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        location = resp.getheader("Location") or ""
        if resp.status != 202 or not location:
            raise RuntimeError(f"POST answered {resp.status}")
        size = os.path.getsize(path)
        started = time.perf_counter()
        with open(path, "rb") as fh:
            for offset in range(0, size, chunk):
                body = fh.read(chunk)
                loc = urlsplit(location)
                conn.request("PATCH", loc.path + ("?" + loc.query if loc.query else ""), body=body,
                             headers={"Content-Length": str(len(body)), "Content-Type": "application/octet-stream",
                                      "Content-Range": f"{offset}-{offset + len(body) - 1}"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"PATCH at {offset} answered {resp.status}")
                location = resp.getheader("Location") or location
        loc = urlsplit(location)
        conn.request("PUT", loc.path + ("?" + loc.query + "&" if loc.query else "?") + f"digest={digest}",
                     headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        elapsed = time.perf_counter() - started
        if resp.status != 201:
            raise RuntimeError(f"PUT answered {resp.status}")
        return elapsed
    finally:
        conn.close()


def pull_hashed(url: str, digest: str, size: int, want_redirect: bool) -> float:
    """GET the blob (following a redirect), hash it in 1 MiB pieces, check it; return the seconds."""
    with requests.Session() as sess:
        sess.trust_env = False
        started = time.perf_counter()
        resp = sess.get(f"{url}/v2/{REPO}/blobs/{digest}", stream=True, timeout=300)
        if resp.status_code != 200:
            raise RuntimeError(f"GET answered {resp.status_code}")
        hasher, got = hashlib.sha256(), 0
        for piece in resp.iter_content(PIECE):
            hasher.update(piece)
            got += len(piece)
        elapsed = time.perf_counter() - started
    if bool(resp.history) != want_redirect:
        raise RuntimeError(f"GET {'was not' if want_redirect else 'was'} redirected")
    if got != size or "sha256:" + hasher.hexdigest() != digest:
        raise RuntimeError(f"GET gave {got} of {size} bytes, or the wrong ones")
    return elapsed


class Meter:
    """CPU seconds of the side's servers and of RGW around one timed step."""

    def __init__(self, pgids: list[int], rgw: list[int], bucket: str):
        self.pgids, self.rgw, self.bucket = pgids, rgw, bucket
        self.steps: list[dict] = []

    def read(self) -> tuple[float, float]:
        return sum(proc_tree_cpu_seconds(p) or 0.0 for p in self.pgids), pids_cpu_seconds(self.rgw) or 0.0

    def run(self, fn, *args):
        """(fn's result, a step dict: server and RGW CPU s, its bucket and time window for _s3_log)."""
        srv0, rgw0 = self.read()
        t0 = time.time()
        result = fn(*args)
        t1 = time.time()
        srv1, rgw1 = self.read()
        step = {"srv_cpu": srv1 - srv0, "rgw_cpu": rgw1 - rgw0, "bucket": self.bucket, "t0": t0, "t1": t1}
        self.steps.append(step)
        return result, step


def blob_round(side, meter: Meter, tmp: str, seed: int, mib: int, chunk: int) -> dict:
    """The four blob steps on one side; MiB/s and CPU seconds of each."""
    size, row = mib * PIECE, {}
    paths = [os.path.join(tmp, "put"), os.path.join(tmp, "patch")]
    digests = [make_blob(paths[0], mib, seed * 2), make_blob(paths[1], mib, seed * 2 + 1)]
    steps = {"push_put": (push, side.proxy.url, paths[0], digests[0], "put"),
             "push_patch": (push_chunked, side.proxy.url, paths[1], digests[1], chunk),
             "pull_proxy": (pull_hashed, side.proxy.url, digests[0], size, False),
             "pull_redirect": (pull_hashed, side.redirect.url, digests[1], size, True)}
    for op, (fn, *args) in steps.items():
        seconds, step = meter.run(fn, *args)
        row[op] = step
        step.update(rate=mib / seconds, seconds=seconds, count=1)
    return row


def get_loop(url: str, paths: list[str], threads: int, seconds: float) -> tuple[int, int, float]:
    """GET ``paths`` round-robin from ``threads`` keep-alive connections for ``seconds``; (ok, errors, s)."""
    def worker(k: int) -> tuple[int, int]:
        client, ok, bad = FastClient(url), 0, 0
        deadline = time.perf_counter() + seconds
        try:
            for i in range(10_000_000):                         # bounded; the deadline ends it
                if time.perf_counter() > deadline:
                    break
                status, _body, _h = client.request("GET", paths[(i * threads + k) % len(paths)],
                                                   {"Accept": MANIFEST_ACCEPT})
                ok, bad = (ok + 1, bad) if status == 200 else (ok, bad + 1)
        finally:
            client.close()
        return ok, bad

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as ex:
        counts = list(ex.map(worker, range(threads)))
    return sum(c[0] for c in counts), sum(c[1] for c in counts), time.perf_counter() - started


def push_blobs(url: str, repo: str) -> tuple[bytes, bytes]:
    config, layer = base_blobs()
    with requests.Session() as sess:
        sess.trust_env = False
        push_blob(sess, url, repo, config, 60)
        push_blob(sess, url, repo, layer, 60)
    return config, layer


def manifest_round(side, meter: Meter, r: int, tags: list[str], threads: int, seconds: float) -> dict:
    """Push ``tags`` into a fresh repository, GET them back by tag, list the 10-tag repository."""
    url, repo = side.proxy.url, f"bench/s3push{r}"
    config, layer = push_blobs(url, repo)
    items = [(r * 1_000_000 + i, t, repo) for i, t in enumerate(tags)]
    (elapsed, errors), step = meter.run(push_all, url, items, threads, config, layer)
    row = {"manifest_put": step}
    step.update(rate=len(tags) / elapsed, count=len(tags), errors=errors)
    loops = {"manifest_get": [f"/v2/{repo}/manifests/{t}" for t in tags],
             "tags_list": [f"/v2/{LIST_REPO}/tags/list"]}
    for op, paths in loops.items():
        (ok, bad, elapsed), step = meter.run(get_loop, url, paths, threads, seconds)
        row[op] = step
        step.update(rate=ok / elapsed, count=ok, errors=bad)
    return row


def per_unit(op: str, entry: dict) -> str:
    """Server and RGW CPU, and S3 requests, of one step: a blob's (CPU in s), or a request's (CPU in ms)."""
    n = max(entry["count"], 1)
    scale, unit = (1, "s") if op in BLOB_OPS else (1000, "ms")
    reqs = entry.get("s3_requests")
    return (f"{entry['srv_cpu'] * scale / n:.2f} / {entry['rgw_cpu'] * scale / n:.2f} {unit}, "
            + ("n/a" if reqs is None else f"{reqs / n:.1f}"))


def kinds_line(op: str, entry: dict) -> str:
    """The commonest S3 requests of a step, per blob or request."""
    n = max(entry["count"], 1)
    return "; ".join(f"{c / n:.2f} {k}" for k, c, _lat in entry.get("s3_kinds", [])[:6])


def summarize(rows: dict) -> dict:
    summary = {}
    for op in BLOB_OPS + MANIFEST_OPS:
        ours = [r[op]["rate"] for r in rows["ours"]]
        peer = [r[op]["rate"] for r in rows["peer"]]
        ratios = sorted(o / p for o, p in zip(ours, peer))
        summary[op] = {"ours_median": statistics.median(ours), "peer_median": statistics.median(peer),
                       "ratio_of_medians": statistics.median(ours) / statistics.median(peer),
                       "ratio_per_round": ratios,
                       "errors": sum(r[op].get("errors", 0) for side in rows.values() for r in side)}
    return summary


def print_table(summary: dict, rows: dict) -> None:
    mid = len(rows["ours"]) // 2
    print("\n| step | unit | ours | peer | **ours/peer** (rounds) | ours: srv / RGW CPU, S3 requests |"
          " peer: the same |")
    print("|---|---|---:|---:|---:|---|---|")
    for op, s in summary.items():
        unit = "MiB/s" if op in BLOB_OPS else "per s"
        print(f"| {op} | {unit} | {fmt_num(s['ours_median'], 0)} | {fmt_num(s['peer_median'], 0)} |"
              f" **{s['ratio_of_medians']:.2f}** ({s['ratio_per_round'][0]:.2f}-{s['ratio_per_round'][-1]:.2f}) |"
              f" {per_unit(op, rows['ours'][mid][op])} | {per_unit(op, rows['peer'][mid][op])} |")
    print(f"CPU (server process groups / Ceph daemons) and S3 requests: a blob or a request, round {mid}.")
    for op in summary:
        for name in ("ours", "peer"):
            print(f"  {op} {name}: {kinds_line(op, rows[name][mid][op])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating (default 3)")
    ap.add_argument("--blob-mib", type=int, default=256, help="blob size in MiB (default 256)")
    ap.add_argument("--chunk-mib", type=int, default=16, help="PATCH size in MiB (default 16)")
    ap.add_argument("--tags", type=int, default=100, help="manifests pushed per round (default 100)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each GET loop (default 5)")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers of each of ours (default 4)")
    ap.add_argument("--ours-binary", default=default_ours_binary())
    ap.add_argument("--keep-s3", action="store_true", help="leave RGW running (its logs under /tmp/bench-s3-*)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/s3-...)")
    args = ap.parse_args(argv)

    tags = generated_tags(args.tags)
    rows: dict[str, list[dict]] = {"ours": [], "peer": []}
    store_gb = max(20, 10 + args.rounds * args.blob_mib * 8 // 1024)
    with tempfile.TemporaryDirectory(prefix="bench-s3-blob-") as tmp, \
            s3_stack(args.workers, args.ours_binary, store_gb, args.keep_s3) as (s3, sides):
        rgw = rgw_pids(s3)
        meters = {name: Meter(side.pgids, rgw, side.bucket) for name, side in sides.items()}
        for side in sides.values():                             # the 10-tag repository of tags_list
            config, layer = push_blobs(side.proxy.url, LIST_REPO)
            push_all(side.proxy.url, [(i, t, LIST_REPO) for i, t in enumerate(generated_tags(10))], 4,
                     config, layer)
        quiet = wait_for_quiet(15)
        print(f"RGW {s3.endpoint} (under {s3.dir}); machine quiet: {quiet}", flush=True)
        for r in range(args.rounds):
            for name in (["ours", "peer"] if r % 2 == 0 else ["peer", "ours"]):
                row = blob_round(sides[name], meters[name], tmp, r * 2 + (name == "peer"), args.blob_mib,
                                 args.chunk_mib * PIECE)
                row.update(manifest_round(sides[name], meters[name], r, tags, args.concurrency, args.seconds))
                rows[name].append(row)
                print(f"round {r} {name}: " + ", ".join(f"{op} {v['rate']:.0f}" for op, v in row.items()),
                      flush=True)
        time.sleep(1.0)                                         # RGW's log is written asynchronously
        attribute(rgw_log(s3), meters["ours"].steps + meters["peer"].steps)
    summary = summarize(rows)
    print_table(summary, rows)
    commit = short_commit()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"s3-{commit}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"commit": commit, "args": vars(args), "quiet": quiet, "loadavg": os.getloadavg(),
                   "rows": rows, "summary": summary}, fh, indent=1)
    print(f"results: {out}")
    return 0 if not any(s["errors"] for s in summary.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
