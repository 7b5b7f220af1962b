"""Where the time of a small request goes: the app's CPU per request, and its profile (issue #11, item 3).

The app (``create_app``) runs in this process against a private ``redis-server`` (the embedded one of
``serve``, under a temp dir): no HTTP server, so the figures are the Flask app's own CPU (routing,
views, services, index reads, JSON), without gunicorn's parsing and socket work. Each operation runs
``--repeat`` times: CPU microseconds per request (``time.process_time``, which also counts this
process's share of the Redis client), then once more under cProfile, whose top functions by own time
are printed. Repositories: ``--tags`` tags (one 100-tag page, ``newer``) and a 10-tag one
(``tags/list``). JSON under bench/results/ (``profile-<commit>-<time>.json``)::

    .venv/bin/python -m bench.profile_ops                 # 1,000 tags, 2,000 requests an operation
    .venv/bin/python -m bench.profile_ops --tags 10000 --top 12
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import tempfile
import time

from bench._common import RESULTS_DIR
from bench.memory import commit_id
from bench.populate import base_blobs, manifest_for, version_tags

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push(client, repo: str, tags: list[str]) -> dict[str, str]:
    """The config and layer blobs, then one manifest per tag (monolithic uploads through the app)."""
    config, layer = base_blobs()
    for blob in (config, layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        resp = client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", data=blob,
                           headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 201, resp.get_data()
    digests = {}
    for i, tag in enumerate(tags):
        resp = client.put(f"/v2/{repo}/manifests/{tag}", data=manifest_for(tag, i, config, layer),
                          headers={"Content-Type": MANIFEST})
        assert resp.status_code == 201, resp.get_data()
        digests[tag] = resp.headers["Docker-Content-Digest"]
    return digests


def operations(big_tags: list[str]) -> dict[str, tuple[str, str]]:
    mid = big_tags[len(big_tags) // 2]
    return {
        "manifest_get": ("GET", f"/v2/big/app/manifests/{mid}"),
        "manifest_head": ("HEAD", f"/v2/big/app/manifests/{mid}"),
        "tags_list_10": ("GET", "/v2/small/app/tags/list"),
        "ext_tags_page_100": ("GET", "/v2/big/app/_regext/tags?sort=semver&order=desc&n=100"),
        "ext_tags_page_100_names": ("GET", "/v2/big/app/_regext/tags?sort=semver&order=desc&n=100&fields=name"),
        "newer_1.2.3": ("GET", "/v2/big/app/_regext/tags/1.2.3/newer"),
    }


def cpu_per_request(client, method: str, url: str, repeat: int) -> float:
    headers = {"Accept": MANIFEST}
    t0 = time.process_time()
    for _ in range(repeat):
        resp = client.open(url, method=method, headers=headers)
        assert resp.status_code == 200, (url, resp.status_code)
    return (time.process_time() - t0) / repeat * 1e6


def profile(client, method: str, url: str, repeat: int, top: int) -> list[dict]:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeat):
        client.open(url, method=method, headers={"Accept": MANIFEST})
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (path, line, name), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{os.path.basename(path)}:{line}({name})", "calls": calls // repeat,
                     "own_us": own / repeat * 1e6, "cum_us": cum / repeat * 1e6})
    return sorted(rows, key=lambda r: -r["own_us"])[:top]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    if not 10 <= args.tags <= 100_000 or not 10 <= args.repeat <= 100_000:
        ap.error("--tags 10..100000, --repeat 10..100000")
    from registry_ext.app import create_app
    from registry_ext.config import load_settings, replace
    from registry_ext.embedded_redis import EmbeddedRedis

    root = tempfile.mkdtemp(prefix="bench-profile-")
    embedded = EmbeddedRedis(os.path.join(root, "data")).start()
    try:
        settings = load_settings(data={"storage": {"root": os.path.join(root, "data")},
                                       "metrics": {"enabled": True}}, environ={})
        client = create_app(replace(settings, "redis", url=embedded.url)).test_client()
        big = version_tags(args.tags)
        push(client, "big/app", big)
        push(client, "small/app", big[:10])
        result = {"commit": commit_id(), "tags": args.tags, "repeat": args.repeat, "loadavg": os.getloadavg(),
                  "ops": {}}
        for name, (method, url) in operations(big).items():
            cpu = cpu_per_request(client, method, url, args.repeat)
            result["ops"][name] = {"url": url, "cpu_us": round(cpu, 1),
                                   "top": profile(client, method, url, max(10, args.repeat // 4), args.top)}
    finally:
        embedded.stop()
        shutil.rmtree(root, ignore_errors=True)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"profile-{result['commit'][:12]}-{int(time.time())}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    for name, op in result["ops"].items():
        print(f"\n{name}: {op['cpu_us']:.0f} us CPU a request  ({op['url']})")
        for row in op["top"]:
            print(f"  {row['own_us']:7.1f} us own {row['cum_us']:8.1f} us cum {row['calls']:5d} calls  "
                  f"{row['function']}")
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
