"""What an online `registry-ext gc` costs the clients using the registry meanwhile (issue #16).

The content of bench/gc.py (``--tags`` tags over ``--repos`` repositories, a quarter of the manifests
deleted, every file two days old) is served by `registry-ext serve` (2 workers) on a private
redis-server that `registry-ext gc` also uses. ``--clients`` threads then pull (a kept tag's manifest,
then one of its blobs) and push (two new blobs and a manifest into ``load/app``) through four phases:
no gc, gc (it frees the deleted manifests' blobs), no gc, gc again (a full mark with nothing to free).
Each gc phase lasts as long as the gc run; each quiet phase ``--quiet`` seconds. Reported per phase:
pushes/s, pulls/s, p50/p99 latency, errors; at the end every push acknowledged during the run is
pulled again, manifest and blobs (``lost`` must be 0).

    .venv/bin/python -m bench.gc_load --tags 10000 --blobs 20000

Prints Markdown; writes JSON to bench/results/. Figures: docs/benchmarks.md#garbage-collection.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

import requests

from bench._common import percentile
from bench.gc import RESULTS, content, populate
from bench.peer import OURS_BINARY, start_ours

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Load:
    """Client threads pushing and pulling until told to stop; what each phase saw."""

    def __init__(self, url: str, kept: list[tuple[str, str, str]], clients: int):
        self.url, self.kept, self.clients = url, kept, clients
        self.pushed: list[tuple[str, list[str]]] = []  # (manifest digest, blob digests) acknowledged
        self.samples: list[tuple[str, float, bool]] = []  # (op, seconds, ok) of the running phase
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.counter = 0

    def phase(self, until) -> dict:
        """Run the clients until ``until()`` returns; the phase's figures."""
        self.samples, self.stop = [], threading.Event()
        threads = [threading.Thread(target=self._client, args=(i,)) for i in range(self.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        until()
        self.stop.set()
        for thread in threads:
            thread.join(60)
        return summarise(self.samples, time.perf_counter() - start)

    def _client(self, seed: int) -> None:
        rnd, sess = random.Random(seed), requests.Session()
        sess.trust_env = False
        while not self.stop.is_set():
            op = "push" if rnd.random() < 0.25 else "pull"
            began = time.perf_counter()
            ok = self._push(sess) if op == "push" else self._pull(sess, rnd)
            with self.lock:
                self.samples.append((op, time.perf_counter() - began, ok))

    def _pull(self, sess, rnd) -> bool:
        repo, tag, blob = rnd.choice(self.kept)
        manifest = sess.get(f"{self.url}/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}, timeout=60)
        layer = sess.get(f"{self.url}/v2/{repo}/blobs/sha256:{blob}", timeout=60)
        return manifest.status_code == 200 and layer.status_code == 200

    def _push(self, sess) -> bool:
        with self.lock:
            self.counter += 1
            n = self.counter
        blobs = [f"load-{n}-{part}-{time.time_ns()}".encode() * 64 for part in ("config", "layer")]
        digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
        for data, digest in zip(blobs, digests):
            resp = sess.post(f"{self.url}/v2/load/app/blobs/uploads/?digest={digest}", data=data, timeout=60,
                             headers={"Content-Type": "application/octet-stream"})
            if resp.status_code != 201:
                return False
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digests[0], "size": len(blobs[0])},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": digests[1], "size": len(blobs[1])}]}).encode()
        resp = sess.put(f"{self.url}/v2/load/app/manifests/n{n}", data=body, timeout=60,
                        headers={"Content-Type": OCI_MANIFEST})
        if resp.status_code != 201:
            return False
        with self.lock:
            self.pushed.append((resp.headers["Docker-Content-Digest"], digests))
        return True

    def lost(self) -> int:
        """Acknowledged pushes whose manifest or a blob no longer reads back."""
        sess, missing = requests.Session(), 0
        sess.trust_env = False
        for manifest, blobs in self.pushed:
            codes = [sess.get(f"{self.url}/v2/load/app/manifests/{manifest}", timeout=60).status_code]
            codes += [sess.get(f"{self.url}/v2/load/app/blobs/{b}", timeout=60).status_code for b in blobs]
            missing += any(code != 200 for code in codes)
        return missing


def summarise(samples: list[tuple[str, float, bool]], seconds: float) -> dict:
    out: dict = {"seconds": round(seconds, 2)}
    for op in ("push", "pull"):
        times = sorted(t for o, t, _ in samples if o == op)
        out[op] = {"per_s": round(len(times) / seconds, 1), "errors": sum(1 for o, _, ok in samples
                                                                           if o == op and not ok),
                   "p50_ms": round(percentile(times, 50) * 1000, 1) if times else None,
                   "p99_ms": round(percentile(times, 99) * 1000, 1) if times else None}
    return out


def kept_tags(args) -> list[tuple[str, str, str]]:
    """(repo, tag, a layer hex) of every tag whose manifest bench/gc.populate keeps."""
    every = max(args.tags // max(args.delete, 1), 1)
    return [(repo, tag, refs[1][0]) for n, (repo, tag, _h, _b, refs)
            in enumerate(content(args.tags, args.blobs, args.repos, args.size))
            if not (args.delete and n % every == 0 and n // every < args.delete)]


def wait_indexed(url: str, repo: str, timeout: float = 300) -> None:
    """Until the index rebuilt from storage answers listings (503 while it rebuilds)."""
    deadline = time.monotonic() + timeout
    while requests.get(f"{url}/v2/{repo}/tags/list", timeout=30).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the index was not rebuilt in time")
        time.sleep(0.5)


def gc_phase(load: Load, ours: str, sock: str) -> dict:
    runs: list[dict] = []

    def until():
        began = time.perf_counter()
        out = subprocess.run([OURS_BINARY, "gc", "--data-dir", ours, "--redis-url", f"unix://{sock}",
                              "--grace-period", "3600"], capture_output=True, text=True, check=True)
        runs.append({"gc_seconds": round(time.perf_counter() - began, 2),
                     "bytes_freed": json.loads(out.stdout)["bytes_freed"]})

    figures = load.phase(until)
    return {**figures, **runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in (("tags", 10_000), ("blobs", 20_000), ("repos", 100), ("delete", 2_500), ("size", 2048),
                          ("clients", 4), ("quiet", 20)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-gc-load-")
    sock = os.path.join(work, "redis.sock")
    redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly",
                              "no"], stdout=subprocess.DEVNULL)
    server = None
    try:
        ours = os.path.join(work, "ours")
        populate(ours, os.path.join(work, "peer"), args)
        shutil.rmtree(os.path.join(work, "peer"))
        server = start_ours(data_dir=ours, redis_url=f"unix://{sock}")
        kept = kept_tags(args)
        wait_indexed(server.url, kept[0][0])
        load = Load(server.url, kept, args.clients)
        phases = []
        for name in ("no gc", "gc", "no gc", "gc (nothing to free)"):
            figures = (load.phase(lambda: time.sleep(args.quiet)) if name == "no gc"
                       else gc_phase(load, ours, sock))
            phases.append({"phase": name, **figures})
        result = {"args": vars(args), "phases": phases, "acknowledged_pushes": len(load.pushed),
                  "lost": load.lost()}
        report(result)
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, f"gc-load-{args.tags}.json"), "w") as handle:
            json.dump(result, handle, indent=2)
    finally:
        if server is not None:
            server.stop()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def report(r: dict) -> None:
    a = r["args"]
    print(f"### gc under load: {a['tags']:,} tags, {a['clients']} clients (1 push : 3 pulls)\n")
    print("| phase | seconds | pushes/s | push p50 / p99 ms | pulls/s | pull p50 / p99 ms | errors | gc |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for p in r["phases"]:
        gc = f"{p['gc_seconds']} s, {p['bytes_freed']:,} B freed" if "gc_seconds" in p else "-"
        print(f"| {p['phase']} | {p['seconds']} | {p['push']['per_s']} | {p['push']['p50_ms']} / "
              f"{p['push']['p99_ms']} | {p['pull']['per_s']} | {p['pull']['p50_ms']} / {p['pull']['p99_ms']} | "
              f"{p['push']['errors'] + p['pull']['errors']} | {gc} |")
    print(f"\n{r['acknowledged_pushes']} pushes acknowledged, {r['lost']} lost")


if __name__ == "__main__":
    main()
