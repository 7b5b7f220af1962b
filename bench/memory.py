"""Memory per process, cold start and compact answers: ``registry-ext serve`` against the peer (issue #11).

Rounds alternate which side starts first (ours/peer, peer/ours). Each round, per side:

1. **cold start**: seconds from spawning the server to its first ``200`` on ``GET /v2/`` (polled every
   5 ms), on an empty data dir and (after the populate) on one holding ``--tags`` tags;
2. **idle memory**: two seconds after that answer, RSS, PSS and USS (private pages) of every process of
   the server's process group (gunicorn master, workers, embedded redis-server; the peer's one process),
   from ``/proc/<pid>/smaps_rollup``. PSS splits pages shared between processes, so the PSS sum is the
   tree's real footprint; the RSS sum counts shared pages once per process.

Then once per side: ``--tags`` release-history tags pushed into one repository, a read load (every
100-tag page of the plain ``tags/list``, ``--gets`` manifest GETs by tag, and for ours every page of
``_regext/tags``), and memory again ("after load"). Last, **bytes**: the complete ``newer than 1.2.3``
answer and the complete ``_regext/tags`` listing, full and with ``fields=name,digest`` and ``fields=name``,
against the peer's plain ``tags/list`` of the same tags.

JSON goes to ``bench/results/memory-<commit>-<time>.json`` (the commit id is in the name and the body,
so runs on successive commits can be compared); a table goes to stdout::

    .venv/bin/python -m bench.memory                    # 3 rounds, 10,000 tags: ~3-5 minutes
    .venv/bin/python -m bench.memory --rounds 1 --tags 1000
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from bench import peer as peer_mod
from bench import populate as populate_mod
from bench._common import RESULTS_DIR, SessionPool, free_port, next_link

REPO = "bench/app"
NEWER_TAG = "1.2.3"


def launch(kind: str, data_dir: str, workers: int) -> tuple[peer_mod.Server, float]:
    """Start one side on a free port; return it and the seconds until ``GET /v2/`` answered 200."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix=f"bench-mem-{kind}-")
    if kind == "peer":
        config = os.path.join(workdir, "config.yml")
        with open(config, "w") as fh:
            fh.write(peer_mod.peer_config(os.path.abspath(data_dir), port))
        argv = [peer_mod.PEER_BINARY, "serve", config]
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    else:
        argv = [peer_mod.OURS_BINARY, "serve", "--host", "127.0.0.1", "--port", str(port),
                "--data-dir", os.path.abspath(data_dir), "--workers", str(workers)]
        env = None
    t0 = time.perf_counter()
    server = peer_mod.spawn(kind, argv, os.path.join(workdir, f"{kind}.log"), workdir, env,
                            f"http://127.0.0.1:{port}", data_dir, workdir)
    for _ in range(6000):  # 30 s at most
        if _answers(port):
            return server, time.perf_counter() - t0
        if not server.alive():
            break
        time.sleep(0.005)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"{kind} did not answer /v2/ within 30 s:\n{tail}")


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/v2/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def processes(pgid: int) -> list[dict]:
    """RSS, PSS and USS (MiB) of each live process of a process group."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
            if int(stat[stat.rfind(")") + 2:].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry}/smaps_rollup") as fh:
                kb = {line.split(":")[0]: int(line.split()[1]) for line in fh if line.endswith("kB\n")}
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, IndexError, ValueError):
            continue
        out.append({"pid": int(entry), "role": _role(int(entry), pgid, cmd), "rss": kb["Rss"] / 1024,
                    "pss": kb["Pss"] / 1024, "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024})
    return sorted(out, key=lambda p: p["pid"])


def _role(pid: int, pgid: int, cmd: str) -> str:
    if "redis-server" in cmd:
        return "redis"
    if "docker-registry" in cmd:
        return "peer"
    return "master" if pid == pgid else "worker"


def totals(procs: list[dict]) -> dict:
    return {k: round(sum(p[k] for p in procs), 1) for k in ("rss", "pss", "uss")}


def load(base: str, gets: int, ours: bool) -> int:
    """The read load before the "after load" figure: every page of tags/list (and _regext/tags), then
    manifest GETs by tag. Returns the requests made."""
    sess = SessionPool(pool_size=1).get()
    tags: list[str] = []
    made = 0
    urls = [f"{base}/v2/{REPO}/tags/list?n=100"] + ([f"{base}/v2/{REPO}/_regext/tags?n=100"] if ours else [])
    for url in urls:
        while url:
            resp = sess.get(url, timeout=60)
            resp.raise_for_status()
            made += 1
            if "/tags/list" in url:
                tags += resp.json()["tags"]
            url = next_link(resp, base)
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    for i in range(gets):
        sess.get(f"{base}/v2/{REPO}/manifests/{tags[i * 7919 % len(tags)]}", headers=accept,
                 timeout=30).raise_for_status()
    return made + gets


def answer_bytes(base: str, ours: bool, n: int) -> dict:
    """Bytes of the complete answers compared in issue #11 item 7."""
    sess = SessionPool(pool_size=1).get()
    out = {"tags_list": len(sess.get(f"{base}/v2/{REPO}/tags/list?n={n}", timeout=60).content)}
    if ours:
        for label, extra in (("full", ""), ("name_digest", "&fields=name,digest"), ("name", "&fields=name")):
            newer = sess.get(f"{base}/v2/{REPO}/_regext/tags/{NEWER_TAG}/newer?n={n}{extra}", timeout=60)
            out[f"newer_{label}"] = len(newer.content)
            out[f"newer_{label}_count"] = len(newer.json()["newer"])
            out[f"tags_{label}"] = _walk_bytes(sess, f"{base}/v2/{REPO}/_regext/tags?n={n}{extra}", base)
    return out


def _walk_bytes(sess, url: str, base: str) -> int:
    total = 0
    while url:
        resp = sess.get(url, timeout=60)
        resp.raise_for_status()
        total += len(resp.content)
        url = next_link(resp, base)
    return total


def measure(kind: str, data_dir: str, workers: int, settle: float) -> dict:
    server, start = launch(kind, data_dir, workers)
    try:
        time.sleep(settle)
        procs = processes(server.pgid)
        return {"start_s": round(start, 3), "procs": procs, "total": totals(procs)}
    finally:
        server.stop(keep_data=True)


def commit_id() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(RESULTS_DIR)).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run(args) -> dict:
    root = tempfile.mkdtemp(prefix="bench-memory-")
    sides = ("ours", "peer")
    result: dict = {"commit": commit_id(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "tags": args.tags, "workers": args.workers, "rounds": [], "loadavg": os.getloadavg()}
    try:
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            result["rounds"].append({k: measure(k, os.path.join(root, f"empty-{k}-{r}"), args.workers,
                                                args.settle) for k in order})
        tags = populate_mod.version_tags(args.tags)
        loaded = {}
        for kind in sides:
            data = os.path.join(root, f"full-{kind}")
            server, _ = launch(kind, data, args.workers)
            try:
                populate_mod.populate(server.url, REPO, tags, concurrency=4, quiet=True)
                made = load(server.url, args.gets, kind == "ours")
                time.sleep(args.settle)
                procs = processes(server.pgid)
                loaded[kind] = {"requests": made, "procs": procs, "total": totals(procs),
                                "bytes": answer_bytes(server.url, kind == "ours", args.tags)}
            finally:
                server.stop(keep_data=True)
        result["after_load"] = loaded
        result["full_rounds"] = []
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            result["full_rounds"].append({k: measure(k, os.path.join(root, f"full-{k}"), args.workers,
                                                     args.settle) for k in order})
        result["loadavg_end"] = os.getloadavg()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def report(res: dict) -> str:
    lines = [f"commit {res['commit'][:12]}, {res['tags']} tags, {res['workers']} workers, "
             f"{len(res['rounds'])} rounds, load average {res['loadavg'][0]:.2f} -> {res['loadavg_end'][0]:.2f}",
             "", "| figure | ours median (min-max) | peer median (min-max) | ours/peer |", "|---|---|---|---|"]

    def row(name: str, rounds: list, pick) -> None:
        ours = [pick(r["ours"]) for r in rounds]
        peer = [pick(r["peer"]) for r in rounds]
        lines.append(f"| {name} | {spread(ours)} | {spread(peer)} | "
                     f"{statistics.median(ours) / statistics.median(peer):.2f}x |")

    row("start to first /v2/ (s), empty", res["rounds"], lambda s: s["start_s"])
    row(f"start to first /v2/ (s), {res['tags']} tags", res["full_rounds"], lambda s: s["start_s"])
    for key in ("pss", "rss"):
        row(f"idle {key.upper()} of the tree (MiB), empty", res["rounds"], lambda s, k=key: s["total"][k])
        row(f"idle {key.upper()} (MiB), {res['tags']} tags", res["full_rounds"], lambda s, k=key: s["total"][k])
        row(f"{key.upper()} after load (MiB)", [res["after_load"]], lambda s, k=key: s["total"][k])
    lines += ["", "Per process, first round (MiB): " + "; ".join(
        f"{p['role']} rss {p['rss']:.1f} pss {p['pss']:.1f} uss {p['uss']:.1f}"
        for k in ("ours", "peer") for p in res["rounds"][0][k]["procs"])]
    lines.append("After load: " + "; ".join(
        f"{p['role']} rss {p['rss']:.1f} pss {p['pss']:.1f} uss {p['uss']:.1f}"
        for k in ("ours", "peer") for p in res["after_load"][k]["procs"]))
    ours_b, peer_b = res["after_load"]["ours"]["bytes"], res["after_load"]["peer"]["bytes"]["tags_list"]
    lines += ["", f"| complete answer at {res['tags']} tags | bytes | / peer tags/list ({peer_b} B) |", "|---|---|---|"]
    for key, value in ours_b.items():
        if not key.endswith("_count") and key != "tags_list":
            count = ours_b.get(f"{key}_count")
            label = key + (f" ({count} tags)" if count is not None else "")
            lines.append(f"| {label} | {value} | {value / peer_b:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tags", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2, help="ours: gunicorn workers (serve's default: 2)")
    ap.add_argument("--gets", type=int, default=2000, help="manifest GETs of the load")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between the answer and the figure")
    args = ap.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 10 <= args.tags <= 100_000:
        ap.error("--rounds 1..20, --tags 10..100000")
    res = run(args)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"memory-{res['commit'][:12]}-{int(time.time())}.json")
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1)
    print(report(res))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
