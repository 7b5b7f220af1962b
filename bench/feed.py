"""The update feed against the naive method: a checker watching 1,000 of 10,000 repositories.

Starts ours (``registry-ext serve``, embedded Redis) and the peer (Debian's ``docker-registry``,
distribution 2.8), pushes the same N repositories (one tag each) into both, then, for a watch list of
W of them (every N/W-th):

- ours: the watch list is POSTed once (``/v2/_regext/updates``), then the checker polls with the
  cursor when nothing changed: plain (200, empty page) and conditional (``If-None-Match``: 304);
  then one tag of a watched repository moves and one poll brings it;
- naive: one ``tags/list`` per watched repository, against the peer (and against ours, for reference).

Measured per round: requests, bytes on the wire (request line and headers as sent, status line,
headers and body as received), client-side latency, and server CPU seconds (utime+stime of the
server's process group: workers, master and, for ours, the embedded redis-server) per poll or per
sweep. ``--rounds`` repeats the timed part; the spread is reported. Loopback only.

    .venv/bin/python -m bench.feed                          # N=10,000, W=1,000, 3 rounds: ~5 minutes
    .venv/bin/python -m bench.feed --repos 2000 --watch 200 --rounds 2   # a quick look
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import time

from bench._common import (OCI_CONFIG, OCI_MANIFEST, RESULTS_DIR, FastClient, percentile,
                     proc_tree_cpu_seconds, wait_for_quiet)
from bench.peer import start_ours, start_peer
from bench.populate import canonical, sha256
CONFIG = canonical({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})


def manifest(repo: str, i: int) -> bytes:
    return canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                      "config": {"mediaType": OCI_CONFIG, "digest": sha256(CONFIG), "size": len(CONFIG)},
                      "annotations": {"bench.repo": repo, "bench.i": str(i)}})


def populate(url: str, names: list[str], concurrency: int) -> float:
    """One config blob and one tagged manifest per repository; returns seconds."""
    started = time.perf_counter()

    def push(name: str) -> None:
        client = FastClient(url)
        status, body, headers = client.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(CONFIG)}",
                                               body=CONFIG, headers={"Content-Type": "application/octet-stream"})
        if status == 202:  # distribution 2.8 opens a session instead of a monolithic upload
            location = headers["Location"].split("://", 1)[-1]
            location = location[location.index("/"):]
            sep = "&" if "?" in location else "?"
            status, body, _ = client.request("PUT", f"{location}{sep}digest={sha256(CONFIG)}", body=CONFIG,
                                             headers={"Content-Type": "application/octet-stream"})
        if status != 201:
            raise RuntimeError(f"blob push to {name}: {status} {body[:200]!r}")
        status, body, _ = client.request("PUT", f"/v2/{name}/manifests/1.0", body=manifest(name, 0),
                                         headers={"Content-Type": OCI_MANIFEST})
        if status != 201:
            raise RuntimeError(f"manifest push to {name}: {status} {body[:200]!r}")
        client.close()

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(push, names))
    return time.perf_counter() - started


class Counted:
    """A FastClient that counts requests and bytes on the wire."""

    def __init__(self, url: str):
        self.client = FastClient(url)
        self.host = f"{self.client.host}:{self.client.port}"
        self.requests = self.sent = self.received = 0

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
        headers = dict(headers or {})
        status, data, got = self.client.request(method, path, headers=headers, body=body)
        self.requests += 1
        sent_headers = {"Host": self.host, "Accept-Encoding": "identity", **headers}
        if body:
            sent_headers["Content-Length"] = str(len(body))
        self.sent += len(f"{method} {path} HTTP/1.1\r\n") + sum(len(k) + len(v) + 4 for k, v in sent_headers.items()) \
            + 2 + len(body or b"")
        self.received += len(f"HTTP/1.1 {status} XX\r\n") + sum(len(k) + len(v) + 4 for k, v in got.items()) \
            + 2 + len(data)
        return status, data, got


def measure(server, fn, count: int) -> dict:
    """Run ``fn(i)`` ``count`` times; client latency and the server's CPU seconds per call."""
    cpu0, latencies = proc_tree_cpu_seconds(server.proc.pid), []
    for i in range(count):
        started = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - started)
    cpu = proc_tree_cpu_seconds(server.proc.pid) - cpu0
    latencies.sort()
    return {"calls": count, "server_cpu_ms_per_call": round(cpu / count * 1000, 3),
            "latency_ms_p50": round(percentile(latencies, 50) * 1000, 3),
            "latency_ms_p90": round(percentile(latencies, 90) * 1000, 3),
            "elapsed_s": round(sum(latencies), 3)}


def checker_rounds(ours, peer, watched: list[str], polls: int) -> dict:
    """One round: ours' polls (plain, conditional, one change) and the naive sweeps."""
    out = {}
    client = Counted(ours.url)
    status, data, _ = client.request("POST", "/v2/_regext/updates", headers={"Content-Type": "application/json"},
                                     body=json.dumps({"repositories": watched}).encode())
    assert status == 200, data[:300]
    doc = json.loads(data)
    path = f"/v2/_regext/updates?watch={doc['watch']}&cursor={doc['next']}"
    out["watch_post"] = {"bytes_sent": client.sent, "bytes_received": client.received}

    plain = Counted(ours.url)
    out["poll_plain"] = measure(ours, lambda i: plain.request("GET", path), polls)
    out["poll_plain"].update(bytes_per_poll=round((plain.sent + plain.received) / polls, 1),
                             bytes_received_per_poll=round(plain.received / polls, 1))
    _status, _data, headers = plain.request("GET", path)
    etag = headers["ETag"]
    cond = Counted(ours.url)
    statuses = set()
    out["poll_304"] = measure(ours, lambda i: statuses.add(cond.request("GET", path, {"If-None-Match": etag})[0]),
                              polls)
    assert statuses == {304}, statuses
    out["poll_304"].update(bytes_per_poll=round((cond.sent + cond.received) / polls, 1),
                           bytes_received_per_poll=round(cond.received / polls, 1))

    changed = watched[len(watched) // 2]
    mover = FastClient(ours.url)
    mover.request("PUT", f"/v2/{changed}/manifests/1.0", body=manifest(changed, int(time.time() * 1000)),
                  headers={"Content-Type": OCI_MANIFEST})
    one = Counted(ours.url)
    _s, data, _h = one.request("GET", path)
    events = json.loads(data)["events"]
    assert [e["repository"] for e in events] == [changed], events
    out["poll_one_change"] = {"bytes": one.sent + one.received}

    for name, server in (("naive_peer", peer), ("naive_ours", ours)):
        sweep = Counted(server.url)

        def sweep_all(_i: int, sweep: Counted = sweep) -> list:
            return [sweep.request("GET", f"/v2/{r}/tags/list") for r in watched]
        out[name] = measure(server, sweep_all, 1)
        out[name].update(requests=sweep.requests, bytes=sweep.sent + sweep.received)
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"


def report(rounds: list[dict], args) -> str:
    pick = lambda part, key: [r[part][key] for r in rounds]  # noqa: E731
    lines = [f"Checker watching {args.watch} of {args.repos} repositories, {args.polls} polls per round, "
             f"{len(rounds)} rounds: median (min-max).", "",
             "| | requests | bytes on the wire | server CPU ms | client ms |", "|---|---|---|---|---|"]
    for part, label in (("poll_plain", "feed poll, nothing new (200)"), ("poll_304", "feed poll, If-None-Match (304)")):
        lines.append(f"| {label} | 1 | {spread(pick(part, 'bytes_per_poll'))} | "
                     f"{spread(pick(part, 'server_cpu_ms_per_call'))} | {spread(pick(part, 'latency_ms_p50'))} (p50) |")
    for part, label in (("naive_peer", "naive: tags/list x W, docker-registry"),
                        ("naive_ours", "naive: tags/list x W, registry-ext")):
        lines.append(f"| {label} | {rounds[0][part]['requests']} | {spread(pick(part, 'bytes'))} | "
                     f"{spread(pick(part, 'server_cpu_ms_per_call'))} | {spread(pick(part, 'elapsed_s'))} s |")
    poll_bytes = statistics.median(pick("poll_plain", "bytes_per_poll"))
    poll_ms = statistics.median(pick("poll_plain", "latency_ms_p50"))
    naive = rounds[0]["naive_peer"]["requests"]
    naive_cpu = statistics.median(pick("naive_peer", "server_cpu_ms_per_call"))
    lines += ["", f"Ratios, naive (docker-registry) / one feed poll: requests {naive}x, "
                  f"bytes {statistics.median(pick('naive_peer', 'bytes')) / poll_bytes:.0f}x, "
                  f"client time {statistics.median(pick('naive_peer', 'elapsed_s')) * 1000 / poll_ms:.0f}x, "
                  f"server CPU {naive_cpu / statistics.median(pick('poll_plain', 'server_cpu_ms_per_call')):.0f}x.",
              f"One poll bringing one event: {spread(pick('poll_one_change', 'bytes'))} bytes; "
              f"the watch list POST (once): {rounds[0]['watch_post']['bytes_sent']} bytes sent."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repos", type=int, default=10_000)
    ap.add_argument("--watch", type=int, default=1000)
    ap.add_argument("--polls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8, help="pushing threads while populating")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wait-quiet", type=float, default=60)
    args = ap.parse_args(argv)
    names = [f"fleet/r{i:05d}" for i in range(args.repos)]
    watched = names[::max(1, args.repos // args.watch)][:args.watch]
    ours = start_ours(workers=args.workers)
    peer = start_peer()
    try:
        for label, server in (("ours", ours), ("peer", peer)):
            print(f"populating {label}: {args.repos} repositories ...", file=sys.stderr, flush=True)
            print(f"  {populate(server.url, names, args.concurrency):.0f} s", file=sys.stderr)
        rounds = []
        for i in range(args.rounds):
            quiet = wait_for_quiet(args.wait_quiet) if args.wait_quiet else {}
            rounds.append(checker_rounds(ours, peer, watched, args.polls) | {"quiet": quiet})
            print(f"round {i + 1}: {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)
    finally:
        ours.stop()
        peer.stop()
    text = report(rounds, args)
    print(text)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"feed-{int(time.time())}.json"), "w") as fh:
        json.dump({"args": vars(args), "rounds": rounds, "report": text}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
