#!/usr/bin/env python3
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
body bytes per operation, tags and pages per operation, and -- when the server's process group is known -- server CPU ms per operation.
The ratio column is ours/peer throughput (>1: ours is faster). Rounds alternate the order
(ours, peer, peer, ours, ...) so drift does not favour one side.

Before timing, a correctness pass (not timed) compares the two sides: same tag set, lexical order, what
n=100 returns, a paginated walk with n=100 (no duplicates, nothing missing), and byte-identical
manifests / matching Docker-Content-Digest for a sample of tags.

Prints a Markdown table and writes JSON to bench/results/tags_list-<timestamp>.json.

Example::

    python bench/tags_list.py --ours http://127.0.0.1:5002 --peer http://127.0.0.1:5001 --repo bench/app \\
        --duration 10 --concurrency 4
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (MANIFEST_ACCEPT, RESULTS_DIR, FastClient, SessionPool, check_loopback,  # noqa: E402
                     fmt_num, next_link, percentile, proc_tree_cpu_seconds, system_busy_seconds)

OPERATIONS = ["ping", "tags_full", "tags_n100", "tags_walk100", "manifest_get", "manifest_head"]
MAX_PAGES = 10_000            # bound on Link-following per listing
MAX_REQUESTS_PER_RUN = 2_000_000


class Side:
    def __init__(self, name: str, url: str, pgid: int | None = None):
        self.name = name
        self.url = check_loopback(url)
        self.pgid = pgid


# --------------------------------------------------------------------------------------------------
# listing helper for the (untimed) checks, and the timed operations

def list_all(sess, base: str, repo: str, n: int | None = None, timeout: float = 120.0):
    """Walk tags/list (optionally with n) following Link rel=next. Returns (tags, pages, bytes, statuses)."""
    url = f"{base}/v2/{repo}/tags/list" + (f"?n={n}" if n else "")
    tags: list[str] = []
    pages = 0
    nbytes = 0
    statuses = []
    for _ in range(MAX_PAGES):
        resp = sess.get(url, timeout=timeout)
        pages += 1
        nbytes += len(resp.content)
        statuses.append(resp.status_code)
        if resp.status_code != 200:
            break
        tags.extend(resp.json().get("tags") or [])
        link = next_link(resp, base)
        if not link:
            break
        check_loopback(link.split("/v2/")[0])
        url = link
    return tags, pages, nbytes, statuses


def make_op(op: str, base: str, repo: str, tags: list[str], timeout: float):
    """Return fn(client: FastClient, rng) -> (ok, body_bytes, extra-or-None) for one operation."""
    accept = {"Accept": MANIFEST_ACCEPT}
    tags_path = f"/v2/{repo}/tags/list"

    if op == "ping":
        def run(cl, rng):
            status, body, _ = cl.request("GET", "/v2/")
            return status == 200, len(body), None
    elif op in ("tags_full", "tags_walk100"):
        first = tags_path if op == "tags_full" else tags_path + "?n=100"

        def run(cl, rng):
            path, pages, nbytes, ntags = first, 0, 0, 0
            for _ in range(MAX_PAGES):
                status, body, headers = cl.request("GET", path)
                pages += 1
                nbytes += len(body)
                if status != 200:
                    return False, nbytes, None
                ntags += len(json.loads(body).get("tags") or [])
                link = next_link(headers.get("Link"), base)
                if not link:
                    break
                parts = urllib.parse.urlsplit(link)
                check_loopback(f"{parts.scheme}://{parts.netloc}")
                path = parts.path + ("?" + parts.query if parts.query else "")
            return True, nbytes, {"tags": ntags, "pages": pages}
    elif op == "tags_n100":
        def run(cl, rng):
            status, body, _ = cl.request("GET", tags_path + "?n=100")
            ok = status == 200
            return ok, len(body), {"tags": len(json.loads(body).get("tags") or []) if ok else 0, "pages": 1}
    elif op == "manifest_get":
        def run(cl, rng):
            status, body, _ = cl.request("GET", f"/v2/{repo}/manifests/{rng.choice(tags)}", accept)
            return status == 200, len(body), None
    elif op == "manifest_head":
        def run(cl, rng):
            status, body, _ = cl.request("HEAD", f"/v2/{repo}/manifests/{rng.choice(tags)}", accept)
            return status == 200, len(body), None
    else:
        raise ValueError(op)
    return run


def timed_run(fn, base: str, concurrency: int, duration: float, seed: int, warmup: int,
              timeout: float) -> dict:
    """Run ``fn`` from ``concurrency`` threads (one keep-alive connection each) for ``duration``
    seconds; return raw measurements."""
    clients = [FastClient(base, timeout) for _ in range(concurrency)]
    # warm-up (not measured): opens every connection, fills caches
    wrng = random.Random(seed ^ 0x5EED)
    for i in range(max(warmup, concurrency)):
        try:
            fn(clients[i % concurrency], wrng)
        except (OSError, http.client.HTTPException, ValueError):
            pass
    lock = threading.Lock()
    lat: list[float] = []
    nbytes: list[int] = []
    extras: list[dict] = []
    errors: list[str] = []
    start_evt = threading.Event()
    per_thread_cap = MAX_REQUESTS_PER_RUN // max(1, concurrency)

    def worker(idx: int):
        rng = random.Random(seed * 1000 + idx)     # same sequence of tags on both sides
        cl = clients[idx]
        my_lat, my_bytes, my_extra, my_err = [], [], [], []
        consecutive = 0
        start_evt.wait(30)
        deadline = t_start[0] + duration
        for _ in range(per_thread_cap):
            t0 = time.perf_counter()
            if t0 >= deadline:
                break
            try:
                ok, size, extra = fn(cl, rng)
                failure = None if ok else f"HTTP {cl.last_status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                ok, size, extra = False, 0, None
                failure = f"{type(exc).__name__}: {exc}"[:200]
            t1 = time.perf_counter()
            if ok:
                consecutive = 0
                my_lat.append(t1 - t0)
                my_bytes.append(size)
                if extra:
                    my_extra.append(extra)
            else:
                my_err.append(failure)
                consecutive += 1
                if consecutive >= 200:          # the server is gone or broken: stop hammering it
                    break
                time.sleep(0.005)
        with lock:
            lat.extend(my_lat)
            nbytes.extend(my_bytes)
            extras.extend(my_extra)
            errors.extend(my_err)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    t_start = [time.perf_counter()]
    cpu_client0 = time.process_time()
    busy0 = system_busy_seconds()
    start_evt.set()
    for t in threads:
        t.join(duration + timeout + 30)
    wall = time.perf_counter() - t_start[0]
    cpu_client = time.process_time() - cpu_client0
    busy1 = system_busy_seconds()
    for cl in clients:
        cl.close()
    return {"lat": lat, "bytes": nbytes, "extras": extras, "errors": errors, "wall": wall,
            "client_cpu": cpu_client, "system_busy": (busy1 - busy0) if busy0 is not None else None}


def summarize(runs: list[dict], cpu_server: float | None) -> dict:
    lat = sorted(x for r in runs for x in r["lat"])
    nbytes = [x for r in runs for x in r["bytes"]]
    extras = [x for r in runs for x in r["extras"]]
    errors = [x for r in runs for x in r["errors"]]
    wall = sum(r["wall"] for r in runs)
    client_cpu = sum(r["client_cpu"] for r in runs)
    busy = [r["system_busy"] for r in runs]
    busy_total = None if any(b is None for b in busy) else sum(busy)
    n = len(lat)
    out = {
        "ops": n,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(wall, 3),
        "ops_per_s": n / wall if wall > 0 else 0.0,
        "p50_ms": percentile(lat, 50) * 1000 if lat else None,
        "p95_ms": percentile(lat, 95) * 1000 if lat else None,
        "mean_ms": statistics.fmean(lat) * 1000 if lat else None,
        "bytes_per_op": statistics.fmean(nbytes) if nbytes else None,
        "client_cpu_share": client_cpu / wall if wall > 0 else None,
        "server_cpu_ms_per_op": (cpu_server * 1000 / n) if (cpu_server is not None and n) else None,
        "server_cpu_share": (cpu_server / wall) if (cpu_server is not None and wall > 0) else None,
        "machine_busy_share": (busy_total / wall) if (busy_total is not None and wall > 0) else None,
    }
    if out["machine_busy_share"] is not None and out["server_cpu_share"] is not None:
        # CPU burnt by everything else on the box (other servers, other users' jobs) during these runs
        out["other_cpu_share"] = max(0.0, out["machine_busy_share"] - out["server_cpu_share"]
                                     - out["client_cpu_share"])
    if extras:
        out["tags_per_op"] = statistics.fmean(e["tags"] for e in extras)
        out["pages_per_op"] = statistics.fmean(e["pages"] for e in extras)
    return out


# --------------------------------------------------------------------------------------------------
# correctness pass (not timed)

def is_lexical(tags: list[str]) -> bool:
    return tags == sorted(tags)


def check_side(sess, side: Side, repo: str, timeout: float) -> dict:
    info: dict = {}
    tags, pages, nbytes, statuses = list_all(sess, side.url, repo, timeout=timeout)
    info["full_list"] = {"tags": len(tags), "distinct": len(set(tags)), "pages": pages, "bytes": nbytes,
                         "statuses": sorted(set(statuses)), "lexical_order": is_lexical(tags),
                         "first": tags[:5]}
    r = sess.get(f"{side.url}/v2/{repo}/tags/list?n=100", timeout=timeout)
    body = r.json() if r.status_code == 200 else {}
    info["n100"] = {"status": r.status_code, "tags_returned": len(body.get("tags") or []),
                    "link": r.headers.get("Link"), "bytes": len(r.content),
                    "honours_n": len(body.get("tags") or []) <= 100,
                    "first": (body.get("tags") or [])[:5]}
    walk, wpages, _, wstat = list_all(sess, side.url, repo, n=100, timeout=timeout)
    info["n100_walk"] = {"tags": len(walk), "distinct": len(set(walk)), "pages": wpages,
                         "statuses": sorted(set(wstat)), "complete": set(walk) == set(tags),
                         "duplicates": len(walk) - len(set(walk)), "lexical_order": is_lexical(walk)}
    if tags:
        last = sorted(tags)[len(tags) // 2]
        r = sess.get(f"{side.url}/v2/{repo}/tags/list", params={"n": 10, "last": last}, timeout=timeout)
        got = (r.json().get("tags") or []) if r.status_code == 200 else []
        expected = [t for t in sorted(tags) if t > last][:10]
        info["n10_last"] = {"last": last, "status": r.status_code, "tags_returned": len(got),
                            "first": got[:3], "matches_lexical_after_last": got == expected}
    info["_tags"] = tags
    return info


def check_manifests(pool_o, pool_p, ours: Side, peer: Side, repo: str, sample: list[str], timeout: float) -> dict:
    res = {"sampled": len(sample), "digest_mismatch": [], "body_mismatch": [], "head_mismatch": [],
           "bad_status": [], "content_types": {}}
    so, sp = pool_o.get(), pool_p.get()
    for tag in sample:
        rows = {}
        for side, sess in ((ours, so), (peer, sp)):
            g = sess.get(f"{side.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                         timeout=timeout)
            h = sess.head(f"{side.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                          timeout=timeout)
            if g.status_code != 200 or h.status_code != 200:
                res["bad_status"].append(f"{side.name} {tag}: GET {g.status_code} HEAD {h.status_code}")
                continue
            body_digest = "sha256:" + hashlib.sha256(g.content).hexdigest()
            hdr = g.headers.get("Docker-Content-Digest")
            res["content_types"].setdefault(side.name, set()).add(g.headers.get("Content-Type"))
            if hdr != body_digest:
                res["digest_mismatch"].append(f"{side.name} {tag}: header {hdr} body {body_digest}")
            if (h.headers.get("Docker-Content-Digest") != hdr
                    or h.headers.get("Content-Length") != str(len(g.content))):
                res["head_mismatch"].append(
                    f"{side.name} {tag}: HEAD digest {h.headers.get('Docker-Content-Digest')} "
                    f"len {h.headers.get('Content-Length')} vs GET {hdr} len {len(g.content)}")
            rows[side.name] = body_digest
        if len(rows) == 2 and rows[ours.name] != rows[peer.name]:
            res["body_mismatch"].append(f"{tag}: ours {rows[ours.name]} peer {rows[peer.name]}")
    res["content_types"] = {k: sorted(str(x) for x in v) for k, v in res["content_types"].items()}
    return res


# --------------------------------------------------------------------------------------------------

def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def tags_cell(x: dict) -> str:
    if "tags_per_op" not in x:
        return "-"
    return f"{fmt_num(x['tags_per_op'], 0)} ({fmt_num(x['pages_per_op'], 0)})"


def markdown(results: dict) -> str:
    ops = results["operations"]
    lines = [
        "| operation | ours req/s | peer req/s | **ours/peer** | ours p50 ms | peer p50 ms | ours p95 ms "
        "| peer p95 ms | ours bytes/op | peer bytes/op | ours tags/op (pages) | peer tags/op (pages) "
        "| ours srv CPU ms/op | peer srv CPU ms/op |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op, r in ops.items():
        o, p = r["ours"], r["peer"]
        rat = r["ratio_ours_over_peer"]
        lines.append("| " + " | ".join([
            f"`{op}`", fmt_num(o["ops_per_s"]), fmt_num(p["ops_per_s"]),
            f"**{rat:.2f}**" if rat is not None else "n/a",
            fmt_num(o["p50_ms"], 2), fmt_num(p["p50_ms"], 2), fmt_num(o["p95_ms"], 2), fmt_num(p["p95_ms"], 2),
            fmt_num(round(o["bytes_per_op"]) if o["bytes_per_op"] is not None else None),
            fmt_num(round(p["bytes_per_op"]) if p["bytes_per_op"] is not None else None),
            tags_cell(o), tags_cell(p),
            fmt_num(o["server_cpu_ms_per_op"], 3), fmt_num(p["server_cpu_ms_per_op"], 3),
        ]) + " |")
    return "\n".join(lines)


def notes(results: dict) -> list[str]:
    out = []
    chk = results.get("checks", {})
    for name in ("ours", "peer"):
        c = chk.get(name)
        if not c:
            continue
        fl, n1, w = c["full_list"], c["n100"], c["n100_walk"]
        out.append(f"{name}: full list {fl['tags']} tags in {fl['pages']} page(s), {fl['bytes']:,} bytes,"
                   f" lexical order: {fl['lexical_order']}; ?n=100 returned {n1['tags_returned']} tags"
                   f" (Link: {'yes' if n1['link'] else 'no'}); n=100 walk: {w['tags']} tags in {w['pages']}"
                   f" page(s), complete: {w['complete']}, duplicates: {w['duplicates']};"
                   f" ?n=10&last=<median>: {c.get('n10_last', {}).get('tags_returned')} tags,"
                   f" lexical-after-last: {c.get('n10_last', {}).get('matches_lexical_after_last')}")
    m = chk.get("manifests")
    if m:
        out.append(f"manifests: {m['sampled']} sampled tags; body mismatches ours vs peer:"
                   f" {len(m['body_mismatch'])}; digest-header mismatches: {len(m['digest_mismatch'])};"
                   f" HEAD/GET mismatches: {len(m['head_mismatch'])}; bad statuses: {len(m['bad_status'])};"
                   f" content types: {m['content_types']}")
        for key in ("body_mismatch", "digest_mismatch", "head_mismatch", "bad_status"):
            for s in m[key][:3]:
                out.append(f"  {key}: {s}")
    if chk.get("tag_sets_equal") is False:
        out.append(f"TAG SETS DIFFER: only ours {chk.get('only_ours_count')}, only peer {chk.get('only_peer_count')}"
                   f" (e.g. {chk.get('only_ours_sample')} / {chk.get('only_peer_sample')})")
    for op, r in results["operations"].items():
        for side in ("ours", "peer"):
            if r[side]["errors"]:
                out.append(f"{op} {side}: {r[side]['errors']} errors, e.g. {r[side]['error_samples']}")
    cs = [r[s]["client_cpu_share"] for r in results["operations"].values() for s in ("ours", "peer")
          if r[s]["client_cpu_share"] is not None]
    if cs:
        out.append(f"client CPU (the load generator, same 2-core box): {min(cs):.2f}-{max(cs):.2f} cores"
                   " during the timed runs.")
    rows = []
    for op, r in results["operations"].items():
        for side in ("ours", "peer"):
            x = r[side]
            if x.get("server_cpu_share") is not None:
                rows.append(f"{op}/{side} srv {x['server_cpu_share']:.2f} cli {x['client_cpu_share']:.2f}"
                            f" other {x.get('other_cpu_share', 0):.2f}")
    if rows:
        out.append("CPU cores used (server / client / everything else on the machine): " + "; ".join(rows))
    return out


def run(ours: Side, peer: Side, repo: str, duration: float, concurrency: int, rounds: int = 4,
        seed: int = 1, warmup: int = 20, timeout: float = 120.0, ops: list[str] | None = None,
        sample: int = 50, label: str | None = None, meta: dict | None = None, quiet: bool = False) -> dict:
    ops = ops or OPERATIONS
    rounds = max(1, rounds)
    pool_o, pool_p = SessionPool(), SessionPool()
    checks = {"ours": check_side(pool_o.get(), ours, repo, timeout),
              "peer": check_side(pool_p.get(), peer, repo, timeout)}
    to, tp = checks["ours"].pop("_tags"), checks["peer"].pop("_tags")
    common = sorted(set(to) & set(tp))
    checks["tag_sets_equal"] = set(to) == set(tp)
    checks["only_ours_count"] = len(set(to) - set(tp))
    checks["only_peer_count"] = len(set(tp) - set(to))
    checks["only_ours_sample"] = sorted(set(to) - set(tp))[:5]
    checks["only_peer_sample"] = sorted(set(tp) - set(to))[:5]
    if not common:
        raise SystemExit(f"no common tags in {repo} (ours {len(to)}, peer {len(tp)}); populate both first")
    srng = random.Random(seed)
    checks["manifests"] = check_manifests(pool_o, pool_p, ours, peer, repo,
                                          srng.sample(common, min(sample, len(common))), timeout)
    pool_o.close()
    pool_p.close()

    per_round = duration / rounds
    results = {"label": label, "repo": repo, "tags_common": len(common), "duration_per_side": duration,
               "rounds": rounds, "concurrency": concurrency, "seed": seed, "warmup": warmup,
               "ours": ours.url, "peer": peer.url, "python": platform.python_version(),
               "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "meta": meta or {}, "checks": checks, "operations": {}}
    for op in ops:
        runs = {"ours": [], "peer": []}
        cpu = {"ours": 0.0, "peer": 0.0}
        for rnd in range(rounds):
            order = (ours, peer) if rnd % 2 == 0 else (peer, ours)
            for side in order:
                fn = make_op(op, side.url, repo, common, timeout)
                c0 = proc_tree_cpu_seconds(side.pgid)
                r = timed_run(fn, side.url, concurrency, per_round, seed + rnd, warmup if op not in ("tags_full", "tags_walk100") else 3, timeout)
                c1 = proc_tree_cpu_seconds(side.pgid)
                if c0 is None or c1 is None:
                    cpu[side.name] = None
                elif cpu[side.name] is not None:
                    cpu[side.name] += c1 - c0
                runs[side.name].append(r)
        so, sp = summarize(runs["ours"], cpu["ours"]), summarize(runs["peer"], cpu["peer"])
        results["operations"][op] = {"ours": so, "peer": sp,
                                     "ratio_ours_over_peer": ratio(so["ops_per_s"], sp["ops_per_s"])}
        if not quiet:
            rr = results["operations"][op]["ratio_ours_over_peer"]
            print(f"  {op:14s} ours {so['ops_per_s']:9.1f}/s  peer {sp['ops_per_s']:9.1f}/s  ours/peer "
                  f"{(rr if rr is not None else float('nan')):.2f}", file=sys.stderr, flush=True)
    return results


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
