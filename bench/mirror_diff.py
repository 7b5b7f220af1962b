"""Mirror-diff benchmark: requests per side and time against the naive method, on loopback.

1. Two instances of this registry (``registry-ext serve``, 2 workers, embedded Redis), each with a
   ``N``-tag repository (``bench/populate.py``) differing in a known way: ``K`` tags only in A, ``K``
   only in B, ``K`` moved (same tag, other digest). mirror-diff (``registry_ext.mirror``, the CLI's
   engine) and the naive method (full ``tags/list`` + one HEAD per tag on each side, same HTTP stack
   and concurrency) run alternately ``--rounds`` times; both must find exactly the seeded differences.
2. Debian's ``docker-registry`` (no enriched API) seeded like A but missing ``K`` tags: the fallback
   path must be correct and send no more requests to it than the naive method.

    .venv/bin/python -m bench.mirror_diff --tags 10000 --diff 50 --rounds 3
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import sys
import time

import requests

from bench._common import MANIFEST_ACCEPT, RESULTS_DIR, check_loopback
from bench.peer import start_ours, start_peer
from bench import populate as populate_module
from bench.populate import base_blobs, generated_tags, manifest_for, populate
from registry_ext.mirror.engine import compare
from registry_ext.mirror.remote import RemoteClient
from registry_ext.mirror.sides import RemoteSide

REPO = "bench/mirror"
# A tag's manifest must not depend on its position in the pushed list, so that both sides agree on
# the tags they share: fix populate's `bench.index` annotation at 0 (repush() changes it to move tags).
populate_module.manifest_for = lambda tag, _index, config, layer: manifest_for(tag, 0, config, layer)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def repush(url: str, tags: list[str], offset: int) -> None:
    """Point ``tags`` at other manifests (different ``bench.index``)."""
    config, layer = base_blobs()
    with requests.Session() as sess:
        sess.trust_env = False
        for i, tag in enumerate(tags):
            body = manifest_for(tag, offset + i, config, layer)
            resp = sess.put(f"{url}/v2/{REPO}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST},
                            timeout=60)
            assert resp.status_code == 201, resp.text


def naive(url: str, concurrency: int, page: int) -> tuple[dict[str, str], int]:
    """Full tags/list (following Link) + one HEAD per tag: tag -> digest, and the requests sent."""
    sent, tags = 0, []
    local = __import__("threading").local()

    def sess() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.trust_env = False
        return local.s

    next_url = f"{url}/v2/{REPO}/tags/list?n={page}"
    while next_url:
        resp = sess().get(next_url, timeout=60)
        sent += 1
        tags += resp.json()["tags"] or []
        link = resp.headers.get("Link")
        next_url = url + link.split(">")[0].lstrip("<") if link else None

    def head(tag: str) -> tuple[str, str]:
        r = sess().head(f"{url}/v2/{REPO}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}, timeout=60)
        return tag, r.headers["Docker-Content-Digest"]

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        digests = dict(pool.map(head, tags))
    return digests, sent + len(tags)


def naive_diff(a: str, b: str, concurrency: int, page: int) -> dict:
    t0 = time.perf_counter()
    da, na = naive(a, concurrency, page)
    db, nb = naive(b, concurrency, page)
    counts = {"only_a": len(da.keys() - db.keys()), "only_b": len(db.keys() - da.keys()),
              "changed": sum(1 for t in da.keys() & db.keys() if da[t] != db[t]),
              "identical": sum(1 for t in da.keys() & db.keys() if da[t] == db[t])}
    return {"seconds": time.perf_counter() - t0, "requests": {"a": na, "b": nb}, "counts": counts}


def mirror_diff(a: str, b: str, concurrency: int, page: int) -> dict:
    t0 = time.perf_counter()
    sides = [RemoteSide(RemoteClient(u, concurrency=concurrency, timeout=60), page=page) for u in (a, b)]
    report = compare(sides[0], sides[1], [(REPO, REPO)])
    r = report.repos[0]
    return {"seconds": time.perf_counter() - t0, "requests": r.requests, "methods": r.methods,
            "counts": {"only_a": len(r.only_a), "only_b": len(r.only_b), "changed": len(r.changed),
                       "identical": r.identical}, "status": r.status, "exit_code": report.exit_code}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=10000)
    ap.add_argument("--diff", type=int, default=50, help="tags in each difference category")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--page", type=int, default=10000, help="page size asked of both sides (limits.page_max)")
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args(argv)
    n, k = args.tags, args.diff
    names = generated_tags(n + k)
    tags_a, tags_b = names[:n], names[k:n + k]  # first k only in A, last k only in B
    moved = names[k:2 * k]
    expected = {"only_a": k, "only_b": k, "changed": k, "identical": n - 2 * k}
    result: dict = {"tags": n, "diff": k, "page": args.page, "concurrency": args.concurrency,
                    "expected": expected, "rounds": []}
    servers = []
    try:
        a, b = start_ours(workers=2), start_ours(workers=2)
        servers += [a, b]
        for server, tags in ((a, tags_a), (b, tags_b)):
            check_loopback(server.url)
            print(f"populating {server.url} with {len(tags)} tags", file=sys.stderr)
            populate(server.url, REPO, tags, quiet=True)
        repush(b.url, moved, 10 ** 6)
        for i in range(args.rounds):
            order = [("mirror_diff", mirror_diff), ("naive", naive_diff)]
            for name, fn in order if i % 2 == 0 else order[::-1]:
                got = fn(a.url, b.url, args.concurrency, args.page)
                got["method"] = name
                assert got["counts"] == expected, (name, got["counts"])
                result["rounds"].append(got)
                print(f"round {i} {name}: {got['seconds']:.3f}s requests {got['requests']}", file=sys.stderr)
        best = {m: min(r["seconds"] for r in result["rounds"] if r["method"] == m) for m in ("mirror_diff", "naive")}
        md = next(r for r in result["rounds"] if r["method"] == "mirror_diff")
        result["summary"] = {"mirror_diff_seconds": best["mirror_diff"], "naive_seconds": best["naive"],
                             "speedup": best["naive"] / best["mirror_diff"],
                             "requests_per_side": md["requests"],
                             "request_budget_per_side": 2 * math.ceil(n / args.page)}
        if not args.skip_peer:
            peer = start_peer()
            servers.append(peer)
            peer_tags = tags_a[:n - k]  # the last k tags of A are missing on the peer
            print(f"populating docker-registry {peer.url} with {len(peer_tags)} tags", file=sys.stderr)
            populate(peer.url, REPO, peer_tags, quiet=True)
            got = mirror_diff(a.url, peer.url, args.concurrency, args.page)
            nv = naive(peer.url, args.concurrency, args.page)
            ok = got["counts"] == {"only_a": k, "only_b": 0, "changed": 0, "identical": n - k}
            result["fallback"] = {**got, "naive_requests_peer": nv[1], "correct": ok}
            print(f"fallback: {got['seconds']:.3f}s requests {got['requests']} naive {nv[1]} correct {ok}",
                  file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"mirror_diff-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps(result["summary"], indent=2))
    if "fallback" in result:
        print(json.dumps({k: result["fallback"][k] for k in ("seconds", "requests", "naive_requests_peer",
                                                              "correct", "methods")}, indent=2))
    print(f"results: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
