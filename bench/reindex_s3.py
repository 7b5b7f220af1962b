"""``registry-ext reindex`` of 10,000 tags from S3 (Ceph RGW) against the same content on a filesystem root.

The content is written straight into storage with the registry's own stores, not pushed over HTTP (pushes
on S3 go at ~8 manifests/s): ``open_storage`` on a filesystem root, ``open_object_storage`` on an
``S3Driver`` (bucket ``reindex``, one prefix per layout). ``--manifests`` (100) image manifests sharing one
config and one layer blob (``blobs.put_bytes``, ``repos.link_blob``, ``repos.put_manifest``), and
``--tags`` (10,000) tags over them (``repos.put_tag`` and a ``created`` history event: ``first_event``),
by ``--threads`` (24) threads, plus the root's marker; both stores get the same records (checked). The
layout ``one`` holds every tag in one repository; with ``--spread N`` a second layout ``spread`` holds
them in N repositories (``--tags``/N each, every repository with all the manifests).

Each run is ``registry-ext reindex --config <toml> --redis-url <private redis-server> --key-prefix
<fresh>`` in a subprocess, timed with its CPU (a fresh prefix: Redis holds nothing, so the update feed is
rebuilt from the tag history too, as after a lost Redis). Its JSON must count every tag. ``--runs`` (3)
runs per layout on the filesystem, ``--s3-runs`` (1) on S3 (about 3 minutes each), alternating. On S3 the
run's requests are read from RGW's access log (bench/_s3_log.py): count, kinds with their summed latency,
and the split between the index rebuild and the feed build (the first request under ``_history/`` starts
the latter).

    .venv/bin/python -m bench.reindex_s3                          # 10,000 tags, 1 repository: ~5 min
    .venv/bin/python -m bench.reindex_s3 --spread 10 --s3-runs 3  # both layouts, 3 runs each: ~25 min
    .venv/bin/python -m bench.reindex_s3 --runs 1 --tags 2000     # quick

JSON: ``bench/results/reindex_s3-<commit>-<time>.json``. Figures: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
import uuid

from bench._common import short_commit, wait_for_quiet
from bench._s3_log import SLACK, kind, parse
from bench._s3_setup import REPO_ROOT, default_ours_binary, ours_toml, private_redis, rgw
from bench.populate import OCI_MANIFEST, base_blobs, generated_tags, manifest_for, sha256

BUCKET_STEM = "reindex"


def layouts(tags: int, spread: int) -> dict[str, list[tuple[str, int]]]:
    """Layout name -> [(repository, tag count)]."""
    out = {"one": [("bench/one", tags)]}
    if spread > 1:
        out["spread"] = [(f"bench/spread{r}", tags // spread + (r < tags % spread)) for r in range(spread)]
    return out


def seed(storage, repos: list[tuple[str, int]], manifests: int, threads: int, now: int) -> dict:
    """Write the blobs, each repository's links and manifests, its tags and their history; counts, seconds."""
    from registry_ext.oci.digest import parse_digest
    from registry_ext.storage import HistoryEvent, ManifestRecord, TagRecord

    config, layer = base_blobs()
    bodies = [manifest_for(f"m{i}", i, config, layer) for i in range(manifests)]
    refs = [parse_digest(sha256(b)) for b in (config, layer)]
    started = time.perf_counter()

    def blob(data: bytes) -> None:
        storage.blobs.put_bytes(parse_digest(sha256(data)), data)

    def repo_manifest(item: tuple[str, int]) -> None:
        name, i = item
        digest = sha256(bodies[i])
        storage.repos.put_manifest(name, ManifestRecord(digest, OCI_MANIFEST, len(bodies[i]), now),
                                   parse_digest(digest))

    def tag(item: tuple[str, int, str]) -> None:
        name, i, tag_name = item
        digest, size = sha256(bodies[i % manifests]), len(bodies[i % manifests])
        storage.repos.put_tag(name, TagRecord(tag_name, digest, now, now))
        first_event(storage, name, HistoryEvent(tag_name, digest, now, "created", OCI_MANIFEST, size))

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as ex:
        list(ex.map(blob, [config, layer, *bodies]))
        list(ex.map(lambda a: storage.repos.link_blob(*a), [(n, d) for n, _ in repos for d in refs]))
        list(ex.map(repo_manifest, [(n, i) for n, _ in repos for i in range(manifests)]))
        items = [(n, i, t) for n, count in repos for i, t in enumerate(generated_tags(count))]
        list(ex.map(tag, items))
    return {"tags": len(items), "manifests": manifests * len(repos), "seconds": time.perf_counter() - started}


def first_event(storage, name: str, event) -> None:
    """A tag's first history event. On a filesystem ``repos.record_history``; on S3 the same line written
    as the tag's segment 0 by the object store's segment writer (storage/object/history.py): what
    ``record_history`` writes for a tag without history, in 1 request instead of 5 (2 ``HEAD``s, 2
    ``LIST``s of the missing segment, the ``GET``) before the ``PUT``. ``check_seed`` compares them."""
    if not storage.on_objects:
        storage.repos.record_history(name, event)
        return
    from registry_ext.storage.history import encode
    from registry_ext.storage.object.history import ObjectSegments

    ObjectSegments(storage.driver, name, event.tag).rewrite(0, encode(event))


def check_seed(fs, s3, repos: list[tuple[str, int]]) -> None:
    """The first and last tag of each repository: the same tag record and history on both stores."""
    for name, count in repos:
        for tag in {generated_tags(count)[0], generated_tags(count)[-1]}:
            a, b = (fs.repos.tag(name, tag), fs.repos.history(name, tag)), (s3.repos.tag(name, tag),
                                                                            s3.repos.history(name, tag))
            if a != b or a[0] is None or len(a[1]) != 1:
                raise SystemExit(f"seeded content differs for {name}:{tag}: {a} against {b}")


def fs_storage(root: str):
    """The filesystem stores on a new marked root."""
    from registry_ext.storage import open_storage
    from registry_ext.storage.marker import prepare, write

    storage = open_storage(root, 86400)
    os.makedirs(root, exist_ok=True)
    write(storage.layout)
    prepare(storage.layout)
    return storage


def s3_storage(s3, bucket: str, prefix: str, scratch: str, redis_url: str):
    """The object stores on ``bucket``/``prefix`` as services/storage_setup.py builds them, with the marker."""
    import redis

    from registry_ext.index.store_locks import StoreLocks
    from registry_ext.storage import open_object_storage
    from registry_ext.storage.driver.s3 import S3Driver, S3Options
    from registry_ext.storage.object.root import write_marker

    options = S3Options(bucket=bucket, prefix=prefix, endpoint_url=s3.endpoint, region=s3.region, path_style=True,
                        access_key=s3.access_key, secret_key=s3.secret_key, max_connections=64)
    driver = S3Driver(options, spool_dir=scratch)
    locks = StoreLocks(redis.Redis.from_url(redis_url), "seed")
    storage = open_object_storage(driver, scratch, locks, 86400)
    write_marker(driver)
    return storage


def fs_toml(path: str, root: str) -> str:
    with open(path, "w") as fh:
        fh.write(f'[storage]\ndriver = "filesystem"\nroot = "{root}"\n')
    return path


def run_reindex(binary: str, config: str, data_dir: str, redis_url: str) -> dict:
    """One ``registry-ext reindex`` under a fresh key prefix: wall seconds, window, its JSON counts."""
    prefix = "ri" + uuid.uuid4().hex[:10]
    argv = [binary, "reindex", "--config", config, "--data-dir", data_dir, "--redis-url", redis_url,
            "--key-prefix", prefix]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, started = time.time(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT), cwd=data_dir)
    seconds, t1 = time.perf_counter() - started, time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"reindex failed ({proc.returncode}): {proc.stderr[-2000:]}")
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "cpu_s": cpu, "t0": t0, "t1": t1, "counts": counts, "key_prefix": prefix}


def s3_requests(log_path: str, run: dict, bucket: str) -> None:
    """Add the run's S3 requests from RGW's log: ``s3_requests``, ``s3_latency_s``, ``s3_kinds`` (kind,
    count, summed latency; repositories and tag shapes merged), and the seconds before the first
    ``_history`` request (``index_seconds``: the index rebuild) and after it (``feed_seconds``)."""
    counts, latency, first = collections.Counter(), collections.Counter(), None
    for ts, method, target, _status, lat in parse(log_path):
        if not (run["t0"] - SLACK <= ts <= run["t1"]) or not target.startswith(f"/{bucket}"):
            continue
        k = re.sub(r"^(\w+) (one|spread)/", r"\1 ", kind(method, target))       # the layout's prefix
        counts[k] += 1
        latency[k] += lat
        if first is None and "_history" in target:
            first = ts
    run.update(s3_requests=sum(counts.values()), s3_latency_s=sum(latency.values()),
               s3_kinds=[(k, n, round(latency[k], 3)) for k, n in counts.most_common()])
    if first is not None:
        run["index_seconds"], run["feed_seconds"] = first - run["t0"], run["t1"] - first


def summarize(runs: list[dict], tags: int) -> dict:
    seconds = [r["seconds"] for r in runs]
    out = {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds),
           "tags_per_s": tags / statistics.median(seconds)}
    for key in ("cpu_s", "index_seconds", "feed_seconds", "s3_requests", "s3_latency_s"):
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = statistics.median(values)
    return out


def print_report(results: dict, tags: int) -> None:
    print("\n| layout | store | runs | reindex s (median, min-max) | tags/s | its CPU s | index / feed s |"
          " S3 requests | S3 latency summed s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for layout, stores in results.items():
        for store, entry in stores.items():
            s = entry["summary"]
            split = (f"{s['index_seconds']:.1f} / {s['feed_seconds']:.1f}" if "feed_seconds" in s else "-")
            reqs = f"{s['s3_requests']:,.0f}" if "s3_requests" in s else "-"
            lat = f"{s['s3_latency_s']:.1f}" if "s3_latency_s" in s else "-"
            print(f"| {layout} | {store} | {len(entry['runs'])} | {s['median_s']:.2f} ({s['min_s']:.2f}-"
                  f"{s['max_s']:.2f}) | {s['tags_per_s']:,.0f} | {s['cpu_s']:.1f} | {split} | {reqs} | {lat} |")
    for layout, stores in results.items():
        if "s3" in stores:
            run = stores["s3"]["runs"][-1]
            kinds = "; ".join(f"{n} {k} ({lat:.1f} s)" for k, n, lat in run.get("s3_kinds", [])[:10])
            print(f"  {layout} on S3, last run: {kinds}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=10_000, help="tags per layout (default 10,000)")
    ap.add_argument("--manifests", type=int, default=100, help="manifests per repository (default 100)")
    ap.add_argument("--spread", type=int, default=0,
                    help="also a layout of the tags spread over this many repositories (e.g. 10); 0: not (default)")
    ap.add_argument("--runs", type=int, default=3, help="reindex runs per layout on the filesystem (default 3)")
    ap.add_argument("--s3-runs", type=int, default=1,
                    help="reindex runs per layout on S3 (default 1: ~3 minutes each at 10,000 tags)")
    ap.add_argument("--threads", type=int, default=24, help="seeding threads (default 24)")
    ap.add_argument("--ours-binary", default=default_ours_binary())
    ap.add_argument("--keep-s3", action="store_true", help="leave RGW running (its log under /tmp/bench-s3-*)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/reindex_s3-...)")
    args = ap.parse_args(argv)

    plans = layouts(args.tags, args.spread)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-reindex-") as work, rgw(10, args.keep_s3) as s3, \
            private_redis(work) as (redis_url, _redis):
        bucket = s3.new_bucket(BUCKET_STEM)
        log_path = os.path.join(str(s3.dir), "log", "client.rgw.s3.log")
        configs = {}
        for layout, repos in plans.items():
            root, scratch = os.path.join(work, f"fs-{layout}"), os.path.join(work, f"s3-{layout}")
            os.makedirs(scratch)
            stores = {"fs": fs_storage(root), "s3": s3_storage(s3, bucket, layout, scratch, redis_url)}
            now = int(time.time() * 1000)                   # the same records on both stores
            seeded = {k: seed(st, repos, args.manifests, args.threads, now) for k, st in stores.items()}
            check_seed(stores["fs"], stores["s3"], repos)
            for store, s in seeded.items():
                print(f"seeded {layout} on {store}: {s['tags']:,} tags, {s['manifests']} manifests in "
                      f"{s['seconds']:.1f} s ({s['tags'] / s['seconds']:,.0f} tags/s)", flush=True)
            configs[layout] = {"fs": (fs_toml(os.path.join(work, f"fs-{layout}.toml"), root), root),
                               "s3": (ours_toml(os.path.join(work, f"s3-{layout}.toml"), s3, bucket, False,
                                                layout), scratch)}
            results[layout] = {store: {"seeded": s, "runs": []} for store, s in seeded.items()}
        quiet = wait_for_quiet(15)
        print(f"RGW {s3.endpoint}; machine quiet: {quiet}", flush=True)
        for r in range(max(args.runs, args.s3_runs)):
            for layout in plans:
                for store in (("fs", "s3") if r % 2 == 0 else ("s3", "fs")):
                    if r >= (args.runs if store == "fs" else args.s3_runs):
                        continue
                    config, data_dir = configs[layout][store]
                    run = run_reindex(args.ours_binary, config, data_dir, redis_url)
                    run.update(bucket=bucket, store=store)
                    results[layout][store]["runs"].append(run)
                    print(f"run {r} {layout} {store}: {run['seconds']:.2f} s {run['counts']}", flush=True)
        time.sleep(1.0)                                         # RGW writes its log asynchronously
        for stores in results.values():
            for run in stores["s3"]["runs"]:
                s3_requests(log_path, run, bucket)
    bad = [(layout, store, run["counts"]) for layout, stores in results.items() for store, e in stores.items()
           for run in e["runs"] if run["counts"].get("tags") != args.tags]
    for stores in results.values():
        for entry in stores.values():
            entry["summary"] = summarize(entry["runs"], args.tags)
    print_report(results, args.tags)
    if bad:
        print(f"WRONG COUNTS (want {args.tags} tags): {bad}")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"reindex_s3-{short_commit()}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"commit": short_commit(), "args": vars(args), "quiet": quiet, "loadavg": os.getloadavg(),
                   "results": results}, fh, indent=1)
    print(f"results: {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
