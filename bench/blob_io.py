"""One large blob pushed and pulled, ours (``registry-ext serve``, no nginx) against the peer.

What a client sees for one big layer without nginx in front (issue #11 item 4): a monolithic push
(``POST`` an upload, ``PUT ?digest=`` with the whole body and its ``Content-Length``; with ``--flow patch``
one ``PATCH`` with the body and an empty ``PUT``) and a pull (``GET``
of the blob, read in 1 MiB pieces and thrown away). Rounds alternate the order (ours, peer, peer, ours,
...); each round pushes a fresh blob of ``--mib`` random MiB (the first 8 bytes differ per round, so
neither side deduplicates) and pulls it back twice (the second pull shows the page cache's effect).
Server CPU is the utime+stime of each server's process group.

    .venv/bin/python -m bench.blob_io                       # 512 MiB, 3 rounds per side
    .venv/bin/python -m bench.blob_io --mib 64 --rounds 2   # quick
    .venv/bin/python -m bench.blob_io --flow patch          # PATCH + empty PUT, as docker pushes

JSON with every figure goes to ``bench/results/blob_io-<commit>-<time>.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import tempfile
import time
from urllib.parse import urlsplit

from bench._common import proc_tree_cpu_seconds, short_commit
from bench.peer import OURS_BINARY, ours_registry, peer_registry

PIECE = 1 << 20
REPO = "bench/big"


def make_blob(path: str, mib: int, round_no: int) -> str:
    """Write ``mib`` random MiB to ``path`` (its first 8 bytes name the round); return its digest."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(mib):
            piece = os.urandom(PIECE)
            if i == 0:
                piece = round_no.to_bytes(8, "big") + piece[8:]
            fh.write(piece)
            digest.update(piece)
    return "sha256:" + digest.hexdigest()


def _conn(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=300, blocksize=PIECE)


def push(url: str, path: str, digest: str, flow: str = "put") -> float:
    """POST, then the file in one PUT (``put``) or one PATCH and an empty PUT (``patch``, docker's way);
    return the seconds after the POST."""
    conn = _conn(url)
    try:
        conn.request("POST", f"/v2/{REPO}/blobs/uploads/", headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 202:
            raise RuntimeError(f"POST answered {resp.status}")
        location = resp.getheader("Location") or ""
        loc = urlsplit(location)
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            started = time.perf_counter()
            if flow == "patch":
                conn.request("PATCH", loc.path + ("?" + loc.query if loc.query else ""), body=fh,
                             headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"PATCH answered {resp.status}")
                loc = urlsplit(resp.getheader("Location") or location)
            target = loc.path + ("?" + loc.query + "&" if loc.query else "?") + f"digest={digest}"
            body = None if flow == "patch" else fh
            conn.request("PUT", target, body=body, headers={"Content-Length": "0" if body is None else str(size),
                                                            "Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - started
        if resp.status != 201:
            raise RuntimeError(f"PUT answered {resp.status}")
        return elapsed
    finally:
        conn.close()


def pull(url: str, digest: str, size: int) -> float:
    """GET the blob, reading it into one reused 1 MiB buffer; return the seconds."""
    conn = _conn(url)
    buf = bytearray(PIECE)
    view = memoryview(buf)
    try:
        started = time.perf_counter()
        conn.request("GET", f"/v2/{REPO}/blobs/{digest}")
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"GET answered {resp.status}")
        got = 0
        for _ in range(size // 4096 + 2):   # bounded: at least 4 KiB per read
            n = resp.readinto(view)
            if not n:
                break
            got += n
        elapsed = time.perf_counter() - started
        if got != size:
            raise RuntimeError(f"GET gave {got} of {size} bytes")
        return elapsed
    finally:
        conn.close()


def one_side(server, path: str, digest: str, size: int, flow: str) -> dict:
    cpu0 = proc_tree_cpu_seconds(server.pgid)
    t_push = push(server.url, path, digest, flow)
    cpu1 = proc_tree_cpu_seconds(server.pgid)
    t_pull = pull(server.url, digest, size)
    cpu2 = proc_tree_cpu_seconds(server.pgid)
    t_pull2 = pull(server.url, digest, size)
    mib = size / PIECE
    return {"push_s": t_push, "pull_s": t_pull, "pull2_s": t_pull2,
            "push_mib_s": mib / t_push, "pull_mib_s": mib / t_pull, "pull2_mib_s": mib / t_pull2,
            "push_cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
            "pull_cpu_s": (cpu2 - cpu1) if cpu1 is not None and cpu2 is not None else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=512, help="blob size in MiB (default 512)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per side, alternating (default 3)")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers for ours (default 4)")
    ap.add_argument("--flow", choices=["put", "patch"], default="put",
                    help="put: the blob in the PUT (default); patch: one PATCH, then an empty PUT (docker)")
    ap.add_argument("--ours-binary", default=OURS_BINARY)
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/blob_io-...)")
    args = ap.parse_args(argv)

    rows: dict[str, list[dict]] = {"ours": [], "peer": []}
    with tempfile.TemporaryDirectory(prefix="bench-blob-") as tmp, \
            peer_registry() as peer, ours_registry(workers=args.workers, binary=args.ours_binary) as ours:
        sides = {"ours": ours, "peer": peer}
        path = os.path.join(tmp, "blob")
        for r in range(args.rounds):
            order = ["ours", "peer"] if r % 2 == 0 else ["peer", "ours"]
            for name in order:
                digest = make_blob(path, args.mib, r * 2 + (name == "peer"))
                row = one_side(sides[name], path, digest, args.mib * PIECE, args.flow)
                rows[name].append(row)
                print(f"round {r} {name}: push {row['push_mib_s']:.0f} MiB/s (cpu {row['push_cpu_s']:.2f} s),"
                      f" pull {row['pull_mib_s']:.0f} MiB/s (cpu {row['pull_cpu_s']:.2f} s),"
                      f" pull again {row['pull2_mib_s']:.0f} MiB/s", flush=True)
    summary = {}
    for key in ("push_mib_s", "pull_mib_s", "pull2_mib_s"):
        ours_med = statistics.median(r[key] for r in rows["ours"])
        peer_med = statistics.median(r[key] for r in rows["peer"])
        ratios = sorted(o[key] / p[key] for o, p in zip(rows["ours"], rows["peer"]))
        summary[key] = {"ours_median": ours_med, "peer_median": peer_med, "ratio_of_medians": ours_med / peer_med,
                        "ratio_per_round_min": ratios[0], "ratio_per_round_max": ratios[-1]}
        print(f"{key}: ours {ours_med:.0f} MiB/s, peer {peer_med:.0f} MiB/s, ours/peer {ours_med / peer_med:.2f}"
              f" (per round {ratios[0]:.2f}-{ratios[-1]:.2f})")
    commit = short_commit()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"blob_io-{commit}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"commit": commit, "mib": args.mib, "flow": args.flow, "workers": args.workers, "rows": rows,
                   "summary": summary}, fh, indent=1)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
