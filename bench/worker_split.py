"""How ``registry-ext serve`` splits keep-alive connections between its gunicorn workers (issue #11, item 3).

``--clients`` threads, each with one keep-alive session, send ``GET /v2/`` for ``--seconds`` a round; the
CPU ticks each worker spent in the round (``/proc/<pid>/stat``) show the split. An even split is ~50 %
each with 2 workers; one worker near 100 % means it holds (nearly) every connection while the other idles::

    .venv/bin/python -m bench.worker_split --rounds 3
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import requests

from bench import peer as peer_mod


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def workers(pgid: int) -> list[int]:
    """The gunicorn workers of a serve process group: its registry-ext processes but the master."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                rest = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if int(rest[2]) == pgid and comm == "registry-ext":
            out.append(int(entry))
    return sorted(out)


def one_round(url: str, pids: list[int], clients: int, seconds: float) -> dict:
    before = {p: cpu_ticks(p) for p in pids}
    stop = time.monotonic() + seconds
    counts: list[int] = []

    def client() -> None:
        with requests.Session() as sess:
            sess.trust_env = False
            n = 0
            while time.monotonic() < stop:
                sess.get(url + "/v2/", timeout=10).raise_for_status()
                n += 1
            counts.append(n)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ticks = {p: cpu_ticks(p) - before[p] for p in pids}
    total = sum(ticks.values()) or 1
    return {"requests": sum(counts), "ticks": ticks, "busiest_share": round(max(ticks.values()) / total, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if not (1 <= args.rounds <= 50 and 1 <= args.clients <= 256 and 0.5 <= args.seconds <= 120):
        ap.error("--rounds 1..50, --clients 1..256, --seconds 0.5..120")
    with peer_mod.ours_registry(workers=args.workers) as server:
        pids = []
        for _ in range(100):  # the workers fork just after the first answer may have come from one
            pids = workers(server.pgid)
            if len(pids) == args.workers:
                break
            time.sleep(0.1)
        for r in range(args.rounds):
            res = one_round(server.url, pids, args.clients, args.seconds)
            print(f"round {r}: {res['requests']} requests, CPU ticks per worker {res['ticks']}, "
                  f"busiest worker {res['busiest_share']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
