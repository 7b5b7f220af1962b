"""What one tag-history page costs on a history of a million events (issue #10 item 8).

Writes two histories of ``--events`` events (default 1,000,000) for one repository straight into a fresh
storage root, in the format ``registry-ext`` itself appends (``registry_ext.storage.history.encode``):

``segmented``  as the registry writes it today: 64 KiB segments ``_history/<tag>``, ``<tag>~1``, ...
``legacy``     as a registry before segments wrote it: the whole history in one file ``_history/<tag>``
               (about 190 MB), which stays segment 0 after an upgrade

then starts ``registry-ext serve`` (1 worker, embedded Redis) on that root and times, for each tag, with
``--repeat`` requests each: the newest page (``n=100``), a page ``before`` the middle of the history, the
page after it (its ``Link``), a ``since`` near the end, and a ``digest`` filter on a digest that appears
once, near the oldest end (it passes over ``limits.scan_max`` = 50,000 entries per request). Also the
worker's RSS before and after. With ``--baseline REV`` the newest page of the legacy history is timed on
commit REV too (before segments, every request parsed the whole file).

    .venv/bin/python -m bench.tag_history                       # ~2 minutes
    .venv/bin/python -m bench.tag_history --baseline 982b61f --baseline-repeat 3

Prints Markdown; writes JSON to bench/results/. Figures: docs/tag-history.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import requests

from bench._common import proc_tree_rss_mb, wait_for_quiet
from bench.listings import snapshot_ours
from bench.peer import OURS_BINARY, start_ours
from registry_ext.config import LimitSettings
from registry_ext.services.history import format_timestamp
from registry_ext.storage import history
from registry_ext.storage.layout import Layout

REPO = "bench/history"
T0 = 1_780_000_000_000
MEDIA = "application/vnd.oci.image.manifest.v1+json"
RARE = "sha256:" + "f" * 64
SCAN_MAX = LimitSettings().scan_max


def event(i: int) -> history.HistoryEvent:
    """Event ``i``: 1,000 digests in turn, 1-4 ms apart; the rare digest once, as event 10."""
    digest = RARE if i == 10 else f"sha256:{i % 1000:064x}"
    return history.HistoryEvent("x", digest, T0 + i * 3 - i % 2, "moved" if i else "created", MEDIA, 400 + i % 500)


def write_histories(root: str, events: int) -> None:
    """The two histories, written as appends would leave them (without an fsync per line)."""
    layout = Layout(root)
    os.makedirs(os.path.join(root, "repos", REPO, "_manifests"), exist_ok=True)  # the repository exists
    legacy = layout.history_segment(REPO, "legacy", 0)
    legacy.parent.mkdir(parents=True, exist_ok=True)
    segment, seg_file, seg_size = 0, open(layout.history_segment(REPO, "segmented", 0), "wb"), 0
    with open(legacy, "wb") as whole:
        for i in range(events):
            line = history.encode(event(i))
            whole.write(line)
            if seg_size >= history.SEGMENT_BYTES:
                seg_file.close()
                segment += 1
                seg_file, seg_size = open(layout.history_segment(REPO, "segmented", segment), "wb"), 0
            seg_file.write(line)
            seg_size += len(line)
    seg_file.close()


def timed(session: requests.Session, url: str, repeat: int) -> dict:
    """Median and max milliseconds of ``repeat`` GETs of ``url`` (all must answer 200)."""
    times, resp = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        resp = session.get(url, timeout=600)
        times.append((time.perf_counter() - start) * 1000)
        if resp.status_code != 200:
            raise SystemExit(f"{url}: {resp.status_code} {resp.text[:300]}")
    return {"median_ms": statistics.median(times), "max_ms": max(times),
            "entries": len(resp.json()["manifests"]), "link": resp.links.get("next", {}).get("url")}


def peak_rss_mb(pgid: int) -> float:
    """The largest peak resident size (VmHWM, MiB) of one process of group ``pgid``: the worker's."""
    peak = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                data = fh.read().decode("ascii", "replace")
            if int(data[data.rfind(")") + 2:].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry}/status") as fh:
                peak = max([peak] + [int(line.split()[1]) for line in fh if line.startswith("VmHWM:")])
        except (OSError, IndexError, ValueError):
            continue
    return peak / 1024


def wait_index(base: str, timeout: float = 120) -> None:
    """Until the index of the new Redis is built (views reading it answer 503 before)."""
    deadline = time.monotonic() + timeout
    while requests.get(f"{base}/v2/_catalog", timeout=10).status_code == 503:
        if time.monotonic() > deadline:
            raise SystemExit("the index was not built in time")
        time.sleep(0.2)


def measure(base: str, tag: str, events: int, repeat: int) -> dict:
    url = f"{base}/v2/{REPO}/_oci/tag-history/{tag}"
    middle = format_timestamp(event(events // 2).at)
    with requests.Session() as session:
        session.trust_env = False
        out = {"newest page": timed(session, f"{url}?n=100", repeat),
               "before the middle": timed(session, f"{url}?n=100&before={middle}", repeat)}
        out["its next page"] = timed(session, base + out["before the middle"]["link"], repeat)
        out["since near the end"] = timed(session, f"{url}?since={format_timestamp(event(events - 50).at)}", repeat)
        out["digest seen once"] = timed(session, f"{url}?n=100&digest={RARE}", repeat)
    newest = out["newest page"]
    assert newest["entries"] == 100 and newest["link"], newest
    assert out["since near the end"]["entries"] == 49 and out["since near the end"]["link"] is None
    rare = out["digest seen once"]
    if events - 10 > SCAN_MAX:  # more entries to pass over than one request may: an empty page to go on from
        assert rare["entries"] == 0 and rare["link"], rare
    else:
        assert rare["entries"] == 1 and rare["link"] is None, rare
    return out


def run(events: int, repeat: int, baseline: str | None, baseline_repeat: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="bench-history-")
    root = os.path.join(workdir, "data")
    try:
        start = time.perf_counter()
        write_histories(root, events)
        sizes = {tag: sum(p.stat().st_size for p in Layout(root).history_dir(REPO).glob(tag + "*"))
                 for tag in ("segmented", "legacy")}
        result = {"events": events, "write_s": time.perf_counter() - start, "bytes": sizes, "rounds": {}}
        wait_for_quiet(60)
        server = start_ours(data_dir=root, workers=1)
        try:
            wait_index(server.url)
            rss_before = proc_tree_rss_mb(server.pgid)
            for tag in ("segmented", "legacy"):
                result["rounds"][tag] = measure(server.url, tag, events, repeat)
            result["rss_mb"] = {"before": rss_before, "after": proc_tree_rss_mb(server.pgid),
                                "peak": peak_rss_mb(server.pgid)}
        finally:
            server.stop(keep_data=True)
        if baseline:
            result["baseline"] = run_baseline(root, baseline, baseline_repeat)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_baseline(root: str, rev: str, repeat: int) -> dict:
    """The newest page of the legacy history on commit ``rev`` (it reads the whole file per request)."""
    shutil.rmtree(os.path.join(root, "redis"), ignore_errors=True)
    os.unlink(os.path.join(root, "registry-ext.json"))  # the older code knows no marker; leave none behind
    wrapper, srcdir, commit = snapshot_ours(rev)
    try:
        server = start_ours(data_dir=root, workers=1, binary=wrapper)
        try:
            wait_index(server.url)
            rss_before = proc_tree_rss_mb(server.pgid)
            with requests.Session() as session:
                session.trust_env = False
                page = timed(session, f"{server.url}/v2/{REPO}/_oci/tag-history/legacy?n=100", repeat)
            return {"commit": commit, "newest page": page,
                    "rss_mb": {"before": rss_before, "after": proc_tree_rss_mb(server.pgid),
                               "peak": peak_rss_mb(server.pgid)}}
        finally:
            server.stop(keep_data=True)
    finally:
        shutil.rmtree(srcdir, ignore_errors=True)


def report(result: dict) -> str:
    lines = [f"{result['events']:,} events per tag; segmented {result['bytes']['segmented'] / 1e6:.0f} MB, "
             f"legacy {result['bytes']['legacy'] / 1e6:.0f} MB (written in {result['write_s']:.0f} s)", "",
             "| request | segmented: median ms | max ms | legacy (one file): median ms | max ms |",
             "|---|---:|---:|---:|---:|"]
    seg, leg = result["rounds"]["segmented"], result["rounds"]["legacy"]
    for name in seg:
        lines.append(f"| {name} | {seg[name]['median_ms']:.1f} | {seg[name]['max_ms']:.1f} | "
                     f"{leg[name]['median_ms']:.1f} | {leg[name]['max_ms']:.1f} |")
    lines.append(f"\nserver RSS (worker + master + Redis): {result['rss_mb']['before']:.0f} MiB before, "
                 f"{result['rss_mb']['after']:.0f} MiB after; the worker's peak: {result['rss_mb']['peak']:.0f} MiB")
    if "baseline" in result:
        base = result["baseline"]
        lines.append(f"\nbaseline {base['commit'][:10]}, newest page of the legacy history: median "
                     f"{base['newest page']['median_ms']:.0f} ms, max {base['newest page']['max_ms']:.0f} ms; RSS "
                     f"{base['rss_mb']['before']:.0f} MiB before, {base['rss_mb']['after']:.0f} MiB after; "
                     f"the worker's peak: {base['rss_mb']['peak']:.0f} MiB")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events per history (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=20, help="requests per measurement (default 20)")
    ap.add_argument("--baseline", help="also time the legacy history's newest page on this commit")
    ap.add_argument("--baseline-repeat", type=int, default=3, help="requests on the baseline (default 3)")
    args = ap.parse_args(argv)
    if not os.path.exists(OURS_BINARY):
        raise SystemExit(f"{OURS_BINARY} not found: pip install -e . in the venv")
    result = run(args.events, args.repeat, args.baseline, args.baseline_repeat)
    print(report(result))
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"tag_history-{int(time.time())}.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
