"""The web UI's pages on a 100,000-tag repository (issue #17): target <= 200 ms each.

Starts ``registry-ext serve`` (embedded Redis, 2 workers) and the peer, Debian's ``docker-registry``
(distribution 2.8), pushes the same ``--tags`` release-history tags (``populate.version_tags``) into one
repository on each, then times ``--repeat`` GETs (after 3 unmeasured ones) of each UI page:

``repositories``   ``/ui/``: the repository list with tag counts and last update
``search``         ``/ui/?q=bench/*``: a glob search
``repo by time``   ``/ui/repo/bench/app``: newest 50 tags by push time, families, untagged manifests
``repo by version`` ``?sort=semver``: newest 50 by version
``repo page 2``    the next page of the version order (its link)
``newer than``     ``?sort=semver&running=1.2.3``: the newer-than box, for a tag near the oldest end
``tag``            ``/ui/repo/bench/app/_tag/1.2.3``: manifest, config, referrers, history

The measure is the time to the whole answer at a client on loopback (so it includes one HTTP round
trip: an upper bound of the server's time). The peer has no UI; what a UI over it would need to show
one page of a repository, sorted, is its whole ``tags/list`` (distribution 2.8 has no sort, and its
``n``/``last`` pages only in name order): that GET is timed the same way, and each page's median is
reported as a ratio to it.

    .venv/bin/python -m bench.ui                 # 100,000 tags: populating takes most of the run
    .venv/bin/python -m bench.ui --tags 10000    # quick

Prints Markdown; writes JSON to bench/results/. Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import requests

from bench import populate
from bench.peer import start_ours, start_peer

REPO = "bench/app"
TARGET_MS = 200.0


def timed(session: requests.Session, url: str, repeat: int, html: bool = True) -> dict:
    """Median, p95 and max milliseconds of ``repeat`` GETs of ``url`` (all must answer 200)."""
    for _ in range(3):
        session.get(url, timeout=600)
    times = []
    resp = None
    for _ in range(repeat):
        start = time.perf_counter()
        resp = session.get(url, timeout=600)
        times.append((time.perf_counter() - start) * 1000)
        if resp.status_code != 200:
            raise SystemExit(f"{url}: {resp.status_code} {resp.text[:300]}")
    assert resp is not None
    if html and "text/html" not in resp.headers.get("Content-Type", ""):
        raise SystemExit(f"{url}: not an HTML page")
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "max_ms": round(times[-1], 2), "bytes": len(resp.content), "text": resp.text}


def measure(ours: str, peer: str, repeat: int) -> dict:
    with requests.Session() as session:
        session.trust_env = False
        pages = {
            "repositories": f"{ours}/ui/",
            "search": f"{ours}/ui/?q=bench/*",
            "repo by time": f"{ours}/ui/repo/{REPO}",
            "repo by version": f"{ours}/ui/repo/{REPO}?sort=semver",
            "newer than": f"{ours}/ui/repo/{REPO}?sort=semver&running=1.2.3",
            "tag": f"{ours}/ui/repo/{REPO}/_tag/1.2.3",
        }
        out = {name: timed(session, url, repeat) for name, url in pages.items()}
        link = out["repo by version"]["text"].split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
        out["repo page 2"] = timed(session, ours + link, repeat)
        assert "More newer tags exist" in out["newer than"]["text"], "the newer-than box lists the ten newest"
        out["peer: whole tags/list"] = timed(session, f"{peer}/v2/{REPO}/tags/list", repeat, html=False)
    for row in out.values():
        row.pop("text")
    return out


def run(tags: int, repeat: int, concurrency: int) -> dict:
    names = populate.version_tags(tags)
    ours, peer = start_ours(workers=2), start_peer()
    try:
        pushed = {}
        for side, server in (("ours", ours), ("peer", peer)):
            summary = populate.populate(server.url, REPO, names, concurrency=concurrency, quiet=True)
            if summary["errors"]:
                raise SystemExit(f"{side}: {summary['errors']} pushes failed: {summary['error_samples']}")
            pushed[side] = summary["manifests_per_second"]
        pages = measure(ours.url, peer.url, repeat)
        return {"tags": tags, "repeat": repeat, "pushed_per_second": pushed, "pages": pages}
    finally:
        ours.stop()
        peer.stop()


def report(result: dict) -> str:
    pages = result["pages"]
    peer = pages["peer: whole tags/list"]["median_ms"]
    lines = [f"UI pages on a repository of {result['tags']:,} tags ({result['repeat']} GETs each, loopback):", "",
             "| page | median ms | p95 ms | max ms | bytes | vs peer's tags/list | target <= 200 ms |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, row in pages.items():
        ratio = "1" if name.startswith("peer") else f"{row['median_ms'] / peer:.3f}"
        verdict = "" if name.startswith("peer") else ("met" if row["p95_ms"] <= TARGET_MS else "MISSED")
        lines.append(f"| {name} | {row['median_ms']} | {row['p95_ms']} | {row['max_ms']} | {row['bytes']:,} "
                     f"| {ratio} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=100_000, help="tags in the repository (default 100,000)")
    ap.add_argument("--repeat", type=int, default=30, help="measured GETs per page (default 30)")
    ap.add_argument("--concurrency", type=int, default=8, help="pusher threads (default 8)")
    args = ap.parse_args(argv)
    result = run(args.tags, args.repeat, args.concurrency)
    text = report(result)
    print(text)
    os.makedirs("bench/results", exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    with open(f"bench/results/ui-{stamp}.json", "w") as fh:
        json.dump(result, fh, indent=2)
    with open(f"bench/results/ui-{stamp}.md", "w") as fh:
        fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
