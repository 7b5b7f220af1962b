"""The pull-through mirror's figures (issue #13), as ratios measured in the same run.

1. ``cold``: a cold ``--layer-mib`` (200) MiB layer through our mirror against the same layer pulled from
   the upstream directly: time to first byte (delta, ms) and throughput (ratio); also through a relay
   paced at ``--link-mib`` (100) MiB/s standing for a real link (both sides through it).
2. ``herd``: 16 clients pull one cold ``--herd-mib`` (64) MiB layer at once, through ours and through
   docker-registry in proxy mode: upstream GETs of the layer (counted at a relay) and the wall time.
3. ``warm``: the layer again from our cache against the same content pushed to ours locally.
4. ``image``: a 5-layer image (``--image-mib`` 16 MiB a layer; manifest, config, layers 3 at a time like
   containerd) cold and warm, ours against docker-registry in proxy mode (``proxy.remoteurl``).

Every cold case uses fresh content each round; rounds alternate which side goes first; medians are
reported. Every answer is checked (sha256) after the timed pass. Setup: bench/mirror_setup.py.

    .venv/bin/python -m bench.mirror                 # ~3-4 minutes on 2 cores
    .venv/bin/python -m bench.mirror --rounds 1 --layer-mib 50   # a quick look

Prints Markdown; writes JSON to bench/results/mirror-<commit>-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench._common import RESULTS_DIR, short_commit, wait_for_quiet
from bench.mirror_setup import OCI_MANIFEST, Pull, Stack, blob_bytes, fetch, push_blob, push_image, relay_gets, stack
from bench.mirror_setup import verify

REPO = "bench/app"
MIB = 1 << 20


def med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def cold_layer(st: Stack, rounds: int, size: int, host: str, direct_base: str) -> dict:
    """Per round a fresh layer pushed upstream; pulled from ``direct_base`` and through ours (host)."""
    rows: dict[str, list[Pull]] = {"direct": [], "mirror": []}
    for r in range(rounds):
        digest = push_blob(st.upstream.url, REPO, blob_bytes(size, f"cold-{host}-{r}"))
        urls = {"direct": f"{direct_base}/v2/{REPO}/blobs/{digest}",
                "mirror": st.ours_url(host, REPO, "blobs", digest)}
        for side in (("direct", "mirror") if r % 2 == 0 else ("mirror", "direct")):
            rows[side].append(fetch(urls[side]))
        for url in urls.values():
            verify(url, digest)
    ttfb = {side: med([p.ttfb for p in pulls]) * 1000 for side, pulls in rows.items()}
    rate = {side: med([p.mib_s for p in pulls]) for side, pulls in rows.items()}
    return {"ttfb_ms": ttfb, "mib_s": rate, "ttfb_delta_ms": ttfb["mirror"] - ttfb["direct"],
            "throughput_ratio": rate["mirror"] / rate["direct"] if rate["direct"] else 0.0}


def herd(st: Stack, rounds: int, size: int, clients: int = 16) -> dict:
    """``clients`` threads pull one cold layer at once through each side; upstream GETs of it."""
    out: dict[str, dict[str, list]] = {"ours": {"gets": [], "seconds": []}, "peer": {"gets": [], "seconds": []}}
    for r in range(rounds):
        for side in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            digest = push_blob(st.upstream.url, REPO, blob_bytes(size, f"herd-{side}-{r}"))
            url = (st.ours_url("counted.bench", REPO, "blobs", digest) if side == "ours"
                   else f"{st.peer_counted.url}/v2/{REPO}/blobs/{digest}")
            barrier = threading.Barrier(clients)

            def pull(_: int, url: str = url, barrier: threading.Barrier = barrier) -> Pull:
                barrier.wait(60)
                return fetch(url)

            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                pulls = list(pool.map(pull, range(clients)))
            out[side]["seconds"].append(time.perf_counter() - started)
            if any(p.status != 200 or p.size != size for p in pulls):
                raise SystemExit(f"{side}: a herd client got {[(p.status, p.size) for p in pulls]}")
            verify(url, digest)
            out[side]["gets"].append(relay_gets(st.counted).get(f"/v2/{REPO}/blobs/{digest}", 0))
    return {side: {"upstream_gets": v["gets"], "seconds": med(v["seconds"])} for side, v in out.items()}


def warm(st: Stack, rounds: int, size: int) -> dict:
    """A layer cached by the mirror against the same content pushed to ours under a local name."""
    data = blob_bytes(size, "warm")
    digest = push_blob(st.upstream.url, REPO, data)
    push_blob(st.ours.url, "local/app", data)
    urls = {"mirror": st.ours_url("direct.bench", REPO, "blobs", digest),
            "local": f"{st.ours.url}/v2/local/app/blobs/{digest}"}
    verify(urls["mirror"], digest)  # fills the cache
    rows: dict[str, list[float]] = {"mirror": [], "local": []}
    for r in range(rounds * 8):  # 0.1 s a pull: more of them against the noise
        for side in (("mirror", "local") if r % 2 == 0 else ("local", "mirror")):
            rows[side].append(fetch(urls[side]).mib_s)
    rate = {side: med(v) for side, v in rows.items()}
    return {"mib_s": rate, "ratio": rate["mirror"] / rate["local"]}


def pull_image(manifest_url: str, blob_url, parallel: int = 3) -> float:
    """Manifest, then config and layers ``parallel`` at a time; seconds for the whole image."""
    started = time.perf_counter()
    with requests.Session() as sess:  # a fresh connection, as fetch() uses for each blob
        resp = sess.get(manifest_url, headers={"Accept": OCI_MANIFEST}, timeout=60)
    if resp.status_code != 200:
        raise SystemExit(f"manifest {manifest_url}: HTTP {resp.status_code}")
    doc = resp.json()
    digests = [doc["config"]["digest"]] + [layer["digest"] for layer in doc["layers"]]
    with ThreadPoolExecutor(parallel) as pool:
        pulls = list(pool.map(lambda d: fetch(blob_url(d)), digests))
    if any(p.status != 200 for p in pulls):
        raise SystemExit(f"image pull: {[p.status for p in pulls]}")
    return time.perf_counter() - started


def image(st: Stack, rounds: int, layer_size: int) -> dict:
    """A fresh 5-layer image per round, cold then warm, ours (ns) against the peer in proxy mode."""
    secs: dict[str, list[float]] = {"ours_cold": [], "peer_cold": [], "ours_warm": [], "peer_warm": []}
    for r in range(rounds):
        repo = f"bench/img{r}"
        pushed = push_image(st.upstream.url, repo, "1",
                            [blob_bytes(layer_size, f"img-{r}-{i}") for i in range(5)])
        sides = {"ours": (st.ours_url("direct.bench", repo, "manifests", "1"),
                          lambda d, repo=repo: st.ours_url("direct.bench", repo, "blobs", d)),
                 "peer": (f"{st.peer_direct.url}/v2/{repo}/manifests/1",
                          lambda d, repo=repo: f"{st.peer_direct.url}/v2/{repo}/blobs/{d}")}
        order = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
        for phase in ("cold", "warm"):
            for side in order:
                secs[f"{side}_{phase}"].append(pull_image(*sides[side]))
        for _, blob_url in sides.values():
            for digest in pushed["blobs"]:
                verify(blob_url(digest), digest)
    m = {k: med(v) for k, v in secs.items()}
    return {"seconds": m, "cold_ratio": m["peer_cold"] / m["ours_cold"], "warm_ratio": m["peer_warm"] / m["ours_warm"]}


def report(res: dict) -> str:
    c, lk, h, w, i = res["cold"], res["cold_linked"], res["herd"], res["warm"], res["image"]
    return "\n".join([
        "| figure | ours (mirror) | reference | ratio / delta | target |",
        "|---|---|---|---|---|",
        f"| cold {res['args']['layer_mib']} MiB layer, loopback: TTFB | {c['ttfb_ms']['mirror']:.1f} ms |"
        f" {c['ttfb_ms']['direct']:.1f} ms (upstream direct) | {c['ttfb_delta_ms']:+.1f} ms | within 50 ms |",
        f"| cold layer, loopback: throughput | {c['mib_s']['mirror']:.0f} MiB/s | {c['mib_s']['direct']:.0f} MiB/s |"
        f" {c['throughput_ratio']:.2f}x | >= 0.9x |",
        f"| cold layer, {res['args']['link_mib']} MiB/s link: TTFB | {lk['ttfb_ms']['mirror']:.1f} ms |"
        f" {lk['ttfb_ms']['direct']:.1f} ms | {lk['ttfb_delta_ms']:+.1f} ms | within 50 ms |",
        f"| cold layer, {res['args']['link_mib']} MiB/s link: throughput | {lk['mib_s']['mirror']:.0f} MiB/s |"
        f" {lk['mib_s']['direct']:.0f} MiB/s | {lk['throughput_ratio']:.2f}x | >= 0.9x |",
        f"| 16 clients, one cold {res['args']['herd_mib']} MiB layer: upstream GETs per round |"
        f" {h['ours']['upstream_gets']} | {h['peer']['upstream_gets']} (docker-registry proxy) | | 1 |",
        f"| 16 clients: wall time | {h['ours']['seconds']:.2f} s | {h['peer']['seconds']:.2f} s |"
        f" {h['peer']['seconds'] / h['ours']['seconds']:.2f}x | |",
        f"| warm layer | {w['mib_s']['mirror']:.0f} MiB/s | {w['mib_s']['local']:.0f} MiB/s (pushed locally) |"
        f" {w['ratio']:.2f}x | >= 0.95x |",
        f"| 5-layer image, cold | {i['seconds']['ours_cold']:.2f} s | {i['seconds']['peer_cold']:.2f} s"
        f" (docker-registry proxy) | {i['cold_ratio']:.2f}x | >= 1.0x |",
        f"| 5-layer image, warm | {i['seconds']['ours_warm']:.3f} s | {i['seconds']['peer_warm']:.3f} s |"
        f" {i['warm_ratio']:.2f}x | >= 1.0x |",
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per figure (default 3)")
    ap.add_argument("--layer-mib", type=int, default=200, help="the cold layer's size (default 200)")
    ap.add_argument("--link-mib", type=int, default=100, help="the paced relay's MiB/s (default 100)")
    ap.add_argument("--herd-mib", type=int, default=64, help="the 16-client layer's size (default 64)")
    ap.add_argument("--image-mib", type=int, default=16, help="each of the 5 layers' size (default 16)")
    ap.add_argument("--workers", type=int, default=2, help="ours' gunicorn workers (default 2, the registry's)")
    ap.add_argument("--wait-quiet", type=float, default=60,
                    help="before each figure, wait up to S seconds for an idle machine (default 60; 0: no)")
    ap.add_argument("--only", default="", help="comma-separated figures to run (cold,cold_linked,herd,warm,image)")
    args = ap.parse_args(argv)
    res: dict = {"args": vars(args), "quiet": {}}
    size = args.layer_mib * MIB
    figures = {"cold": lambda st: cold_layer(st, args.rounds, size, "direct.bench", st.upstream.url),
               "cold_linked": lambda st: cold_layer(st, args.rounds, size, "linked.bench", st.linked.url),
               "herd": lambda st: herd(st, args.rounds, args.herd_mib * MIB),
               "warm": lambda st: warm(st, args.rounds, size),
               "image": lambda st: image(st, args.rounds, args.image_mib * MIB)}
    with stack(args.link_mib * MIB, args.workers) as st:
        for name, run in figures.items():
            if args.only and name not in args.only.split(","):
                continue
            if args.wait_quiet:
                res["quiet"][name] = wait_for_quiet(args.wait_quiet)
            res[name] = run(st)
    commit = short_commit()
    res["commit"] = commit
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"mirror-{commit}-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as fh:
        json.dump(res, fh, indent=2)
    print(report(res) if not args.only else json.dumps({k: res[k] for k in args.only.split(",")}, indent=1))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
