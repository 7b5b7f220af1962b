"""The timed operations of ``tags_list.py`` and the loop that times them (not a script).

``make_op`` builds one operation (ping, full listing, ``n=100`` page or walk, manifest GET/HEAD by random
tag) for a ``FastClient``; ``timed_run`` runs it from several keep-alive threads for a fixed time;
``summarize`` turns runs into rates, latencies, bytes, tags/pages and CPU shares. ``listings.py`` times its
own operations with the same loop.
"""
from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse

from bench._common import (MANIFEST_ACCEPT, FastClient, check_loopback, next_link, percentile,
                     system_busy_seconds)

OPERATIONS = ["ping", "tags_full", "tags_n100", "tags_walk100", "manifest_get", "manifest_head"]
MAX_PAGES = 10_000            # bound on Link-following per listing
MAX_REQUESTS_PER_RUN = 2_000_000


class Side:
    def __init__(self, name: str, url: str, pgid: int | None = None):
        self.name = name
        self.url = check_loopback(url)
        self.pgid = pgid



def make_op(op: str, base: str, repo: str, tags: list[str], timeout: float):
    """Return fn(client: FastClient, rng) -> (ok, body_bytes, extra-or-None) for one operation."""
    accept = {"Accept": MANIFEST_ACCEPT}
    tags_path = f"/v2/{repo}/tags/list"

    if op == "ping":
        def run(cl, rng):
            status, body, _ = cl.request("GET", "/v2/")
            return status == 200, len(body), None
    elif op in ("tags_full", "tags_walk100"):
        first = tags_path if op == "tags_full" else tags_path + "?n=100"

        def run(cl, rng):
            path, pages, nbytes, ntags = first, 0, 0, 0
            for _ in range(MAX_PAGES):
                status, body, headers = cl.request("GET", path)
                pages += 1
                nbytes += len(body)
                if status != 200:
                    return False, nbytes, None
                ntags += len(json.loads(body).get("tags") or [])
                link = next_link(headers.get("Link"), base)
                if not link:
                    break
                parts = urllib.parse.urlsplit(link)
                check_loopback(f"{parts.scheme}://{parts.netloc}")
                path = parts.path + ("?" + parts.query if parts.query else "")
            return True, nbytes, {"tags": ntags, "pages": pages}
    elif op == "tags_n100":
        def run(cl, rng):
            status, body, _ = cl.request("GET", tags_path + "?n=100")
            ok = status == 200
            return ok, len(body), {"tags": len(json.loads(body).get("tags") or []) if ok else 0, "pages": 1}
    elif op == "manifest_get":
        def run(cl, rng):
            status, body, _ = cl.request("GET", f"/v2/{repo}/manifests/{rng.choice(tags)}", accept)
            return status == 200, len(body), None
    elif op == "manifest_head":
        def run(cl, rng):
            status, body, _ = cl.request("HEAD", f"/v2/{repo}/manifests/{rng.choice(tags)}", accept)
            return status == 200, len(body), None
    else:
        raise ValueError(op)
    return run


def timed_run(fn, base: str, concurrency: int, duration: float, seed: int, warmup: int,
              timeout: float) -> dict:
    """Run ``fn`` from ``concurrency`` threads (one keep-alive connection each) for ``duration``
    seconds; return raw measurements."""
    clients = [FastClient(base, timeout) for _ in range(concurrency)]
    # warm-up (not measured): opens every connection, fills caches
    wrng = random.Random(seed ^ 0x5EED)
    for i in range(max(warmup, concurrency)):
        try:
            fn(clients[i % concurrency], wrng)
        except (OSError, http.client.HTTPException, ValueError):
            pass
    lock = threading.Lock()
    lat: list[float] = []
    nbytes: list[int] = []
    extras: list[dict] = []
    errors: list[str] = []
    start_evt = threading.Event()
    per_thread_cap = MAX_REQUESTS_PER_RUN // max(1, concurrency)

    def worker(idx: int):
        rng = random.Random(seed * 1000 + idx)     # same sequence of tags on both sides
        cl = clients[idx]
        my_lat, my_bytes, my_extra, my_err = [], [], [], []
        consecutive = 0
        start_evt.wait(30)
        deadline = t_start[0] + duration
        for _ in range(per_thread_cap):
            t0 = time.perf_counter()
            if t0 >= deadline:
                break
            try:
                ok, size, extra = fn(cl, rng)
                failure = None if ok else f"HTTP {cl.last_status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                ok, size, extra = False, 0, None
                failure = f"{type(exc).__name__}: {exc}"[:200]
            t1 = time.perf_counter()
            if ok:
                consecutive = 0
                my_lat.append(t1 - t0)
                my_bytes.append(size)
                if extra:
                    my_extra.append(extra)
            else:
                my_err.append(failure)
                consecutive += 1
                if consecutive >= 200:          # the server is gone or broken: stop hammering it
                    break
                time.sleep(0.005)
        with lock:
            lat.extend(my_lat)
            nbytes.extend(my_bytes)
            extras.extend(my_extra)
            errors.extend(my_err)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    t_start = [time.perf_counter()]
    cpu_client0 = time.process_time()
    busy0 = system_busy_seconds()
    start_evt.set()
    for t in threads:
        t.join(duration + timeout + 30)
    wall = time.perf_counter() - t_start[0]
    cpu_client = time.process_time() - cpu_client0
    busy1 = system_busy_seconds()
    for cl in clients:
        cl.close()
    return {"lat": lat, "bytes": nbytes, "extras": extras, "errors": errors, "wall": wall,
            "client_cpu": cpu_client, "system_busy": (busy1 - busy0) if busy0 is not None else None}


def summarize(runs: list[dict], cpu_server: float | None) -> dict:
    lat = sorted(x for r in runs for x in r["lat"])
    nbytes = [x for r in runs for x in r["bytes"]]
    extras = [x for r in runs for x in r["extras"]]
    errors = [x for r in runs for x in r["errors"]]
    wall = sum(r["wall"] for r in runs)
    client_cpu = sum(r["client_cpu"] for r in runs)
    busy = [r["system_busy"] for r in runs]
    busy_total = None if any(b is None for b in busy) else sum(busy)
    n = len(lat)
    out = {
        "ops": n,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(wall, 3),
        "ops_per_s": n / wall if wall > 0 else 0.0,
        "p50_ms": percentile(lat, 50) * 1000 if lat else None,
        "p95_ms": percentile(lat, 95) * 1000 if lat else None,
        "mean_ms": statistics.fmean(lat) * 1000 if lat else None,
        "bytes_per_op": statistics.fmean(nbytes) if nbytes else None,
        "client_cpu_share": client_cpu / wall if wall > 0 else None,
        "server_cpu_ms_per_op": (cpu_server * 1000 / n) if (cpu_server is not None and n) else None,
        "server_cpu_share": (cpu_server / wall) if (cpu_server is not None and wall > 0) else None,
        "machine_busy_share": (busy_total / wall) if (busy_total is not None and wall > 0) else None,
    }
    if out["machine_busy_share"] is not None and out["server_cpu_share"] is not None:
        # CPU burnt by everything else on the box (other servers, other users' jobs) during these runs
        out["other_cpu_share"] = max(0.0, out["machine_busy_share"] - out["server_cpu_share"]
                                     - out["client_cpu_share"])
    if extras:
        out["tags_per_op"] = statistics.fmean(e["tags"] for e in extras)
        out["pages_per_op"] = statistics.fmean(e["pages"] for e in extras)
    return out
