"""What a manifest DELETE by digest costs now that it reads the repository's tag files.

A ``DELETE /v2/<name>/manifests/<digest>`` finds the tags pointing at the manifest on storage (one
read per tag file, under the repository lock; issue #10 item 3), so its cost grows with the number
of tags in the repository. This script starts ``registry-ext serve`` (1 worker, embedded Redis),
fills one repository with ``--tags`` tags and another with ``--small`` tags (distinct manifests, as
``populate.py`` pushes them), then, ``--rounds`` times in each: pushes a fresh manifest under one tag
and times its ``DELETE`` by digest (the page cache is warm, as on a registry in use).

    .venv/bin/python -m bench.delete_scan --tags 10000 --small 100 --rounds 30

Prints Markdown; writes JSON to bench/results/. Figures: docs/api.md (DELETE), docs/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import requests

from bench.peer import start_ours
from bench.populate import OCI_MANIFEST, base_blobs, generated_tags, manifest_for, populate, sha256
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def time_deletes(url: str, repo: str, rounds: int) -> list[float]:
    """Milliseconds of each DELETE by digest of a manifest pushed just before under one tag."""
    config, layer = base_blobs()
    sess = requests.Session()
    sess.trust_env = False
    timings = []
    for i in range(rounds):
        tag = f"victim-{i}"
        body = manifest_for(tag, 10_000_000 + i, config, layer)
        resp = sess.put(f"{url}/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST})
        assert resp.status_code == 201, resp.text
        t0 = time.perf_counter()
        resp = sess.delete(f"{url}/v2/{repo}/manifests/{sha256(body)}")
        timings.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 202, resp.text
        assert sess.head(f"{url}/v2/{repo}/manifests/{tag}").status_code == 404
    return timings


def summary(timings: list[float]) -> dict:
    ordered = sorted(timings)
    return {"median_ms": round(statistics.median(ordered), 2), "p90_ms": round(ordered[int(len(ordered) * 0.9)], 2),
            "min_ms": round(ordered[0], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=10000, help="tags in the large repository")
    parser.add_argument("--small", type=int, default=100, help="tags in the small repository")
    parser.add_argument("--rounds", type=int, default=30, help="timed deletes per repository")
    args = parser.parse_args(argv)
    server = start_ours(workers=1)
    try:
        result = {"tags": args.tags, "small": args.small, "rounds": args.rounds}
        for key, count in (("large", args.tags), ("small", args.small)):
            repo = f"bench/{key}"
            filled = populate(server.url, repo, generated_tags(count), concurrency=4, quiet=True)
            assert filled["errors"] == 0, filled["error_samples"]
            result[key] = summary(time_deletes(server.url, repo, args.rounds))
    finally:
        server.stop()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "delete_scan.json"), "w") as out:
        json.dump(result, out, indent=2)
    print("| repository | tags | DELETE by digest, median | p90 | min |")
    print("|---|---:|---:|---:|---:|")
    for key, count in (("large", args.tags), ("small", args.small)):
        row = result[key]
        print(f"| bench/{key} | {count:,} | {row['median_ms']} ms | {row['p90_ms']} ms | {row['min_ms']} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
