"""What access control costs: an authenticated manifest HEAD against an anonymous one on the same server.

Starts ``registry-ext serve`` twice (embedded Redis, ``--workers``), once with ``[auth] scheme = "token"``
and once with ``"basic"``, both with a rule letting anonymous callers pull ``bench/**``; pushes one
image; then times, in rounds alternating the order so drift favours neither:

  anonymous  HEAD /v2/bench/app/manifests/latest               no Authorization
  bearer     the same with a token from /auth/token             (token server; verified once, then cached)
  basic      the same with Basic credentials                    (basic server; bcrypt once, then cached)

and reports requests/s, median and p95 latency per kind and the ratio of the anonymous rate to the
authenticated one (the cost factor: 1.15 means the authenticated HEAD costs 15 % more). Then the same two
kinds interleaved (each client thread alternates them request by request, so both meet the same load)
with the ratio of mean latencies. Also times the
first request of new credentials (one bcrypt at the htpasswd's cost) against a cached one, and, in
process without HTTP, the microseconds the access check itself takes per request (a figure a busy
machine disturbs much less than the HTTP rates).

Prints a Markdown table and writes JSON to bench/results/auth-<timestamp>.json. Example::

    python -m bench.auth --duration 20 --rounds 4 --concurrency 4
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import bcrypt
import requests

from bench._common import RESULTS_DIR, FastClient, percentile, wait_for_quiet
from bench.peer import start_ours
REPO, TAG = "bench/app", "latest"
PATH = f"/v2/{REPO}/manifests/{TAG}"
USERS = 20  # for the first-request (bcrypt) timing: each user's first request pays one bcrypt


def write_config(folder: str, scheme: str, cost: int) -> str:
    with open(os.path.join(folder, "htpasswd"), "w") as out:
        for i in range(USERS + 1):
            hashed = bcrypt.hashpw(f"pw{i}".encode(), bcrypt.gensalt(cost)).decode()
            out.write(f"user{i}:$2y${hashed[4:]}\n")
    path = os.path.join(folder, f"{scheme}.toml")
    with open(path, "w") as out:
        out.write(f'[auth]\nscheme = "{scheme}"\nhtpasswd = "{folder}/htpasswd"\naudit_log = "{folder}/audit.log"\n'
                  'token_ttl_seconds = 3600\nrules = [ { repository = "bench/**", who = ["anonymous"], '
                  'actions = ["pull"] }, { repository = "**", who = ["*"], actions = ["*"] } ]\n')
    return path


def basic(user: int) -> str:
    return "Basic " + base64.b64encode(f"user{user}:pw{user}".encode()).decode()


def token(url: str, scope: str) -> str:
    resp = requests.get(f"{url}/auth/token", params={"service": "registry-ext", "scope": scope},
                        headers={"Authorization": basic(0)}, timeout=30)
    resp.raise_for_status()
    return resp.json()["token"]


def push_image(url: str, headers: dict) -> None:
    """One config, one layer, one manifest, through the plain API."""
    blobs = [json.dumps({"architecture": "amd64", "os": "linux"}).encode(), os.urandom(1024)]
    descriptors = []
    for data, media in zip(blobs, ("application/vnd.oci.image.config.v1+json",
                                   "application/vnd.oci.image.layer.v1.tar+gzip")):
        digest = "sha256:" + __import__("hashlib").sha256(data).hexdigest()
        resp = requests.post(f"{url}/v2/{REPO}/blobs/uploads/?digest={digest}", data=data, headers=headers,
                             timeout=30)
        assert resp.status_code == 201, resp.text
        descriptors.append({"mediaType": media, "digest": digest, "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descriptors[0], "layers": descriptors[1:]}).encode()
    resp = requests.put(f"{url}{PATH}", data=manifest, timeout=30, headers={
        **headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 201, resp.text


def timed(url: str, headers: dict, seconds: float, concurrency: int) -> list[float]:
    """HEAD latencies (s) from ``concurrency`` threads for ``seconds``; every answer must be 200."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        client, mine = FastClient(url), []
        for _ in range(20):  # warm-up: connection, token cache
            client.request("HEAD", PATH, headers)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            status, _, _ = client.request("HEAD", PATH, headers)
            mine.append(time.perf_counter() - start)
            if status != 200:
                raise SystemExit(f"HEAD answered {status}")
        client.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def interleaved(url: str, kinds: dict[str, dict], seconds: float, concurrency: int) -> dict:
    """Every client thread alternates the kinds request by request, so both meet the same machine load
    (other processes on a shared machine move the per-round rates far more than the check costs)."""
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        client, mine = FastClient(url), {kind: [] for kind in kinds}
        for headers in kinds.values():
            for _ in range(10):
                client.request("HEAD", PATH, headers)
        while time.monotonic() < deadline:
            for kind, headers in kinds.items():
                start = time.perf_counter()
                status, _, _ = client.request("HEAD", PATH, headers)
                mine[kind].append(time.perf_counter() - start)
                if status != 200:
                    raise SystemExit(f"HEAD answered {status}")
        client.close()
        with lock:
            for kind in kinds:
                latencies[kind] += mine[kind]

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = {}
    for kind, values in latencies.items():
        values.sort()
        out[kind] = {"requests": len(values), "median_ms": round(percentile(values, 50) * 1000, 3),
                     "mean_ms": round(statistics.fmean(values) * 1000, 3),
                     "p95_ms": round(percentile(values, 95) * 1000, 3)}
    return out


def compare(url: str, kinds: dict[str, dict], duration: float, rounds: int, concurrency: int) -> dict:
    """Alternate the kinds over ``rounds``; per kind: rate, median, p95, per-round rates."""
    samples = {kind: [] for kind in kinds}
    rates = {kind: [] for kind in kinds}
    order = list(kinds)
    for number in range(rounds):
        for kind in (order if number % 2 == 0 else order[::-1]):
            latencies = timed(url, kinds[kind], duration / rounds, concurrency)
            samples[kind] += latencies
            rates[kind].append(len(latencies) / (duration / rounds))
    out = {}
    for kind, values in samples.items():
        values.sort()
        out[kind] = {"rate": round(statistics.mean(rates[kind]), 1), "rounds": [round(r, 1) for r in rates[kind]],
                     "median_ms": round(percentile(values, 50) * 1000, 3),
                     "p95_ms": round(percentile(values, 95) * 1000, 3)}
    return out


def first_requests(url: str, cost: int) -> dict:
    """Time the first HEAD of USERS new credentials (one bcrypt each) and then a cached one."""
    client = FastClient(url)
    first, cached = [], []
    for user in range(1, USERS + 1):
        for bucket in (first, cached):
            start = time.perf_counter()
            status, _, _ = client.request("HEAD", PATH, {"Authorization": basic(user)})
            bucket.append(time.perf_counter() - start)
            assert status == 200, status
    client.close()
    return {"bcrypt_cost": cost, "first_median_ms": round(statistics.median(first) * 1000, 2),
            "cached_median_ms": round(statistics.median(cached) * 1000, 2)}


def hook_cost(folder: str, cost: int, calls: int = 20000) -> dict:
    """Microseconds per request the access check itself takes (in process, no HTTP): stable on a busy machine."""
    import redis

    from registry_ext.auth.core import build_auth
    from registry_ext.config import load_settings
    from registry_ext.index.throttle import LoginThrottle

    out = {}
    for scheme in ("token", "basic"):
        settings = load_settings(write_config(folder, scheme, cost), data={"storage": {"root": folder}}, environ={})
        auth = build_auth(settings, LoginThrottle(redis.Redis(), "bench"))  # the cached paths never reach Redis
        if scheme == "token":
            access = [{"type": "repository", "name": REPO, "actions": ["pull"]}]
            header, flags = f"Bearer {auth.issuer.issue('user0', access)[0]}", {"basic": False, "bearer": True}
        else:
            header, flags = basic(0), {"basic": True, "bearer": False}
        for label, value in (("anonymous", None), (scheme if scheme == "basic" else "bearer", header)):
            auth.allowed(auth.authenticate(value, "127.0.0.1", **flags), REPO)  # first: verify / bcrypt
            start = time.perf_counter()
            for _ in range(calls):
                auth.allowed(auth.authenticate(value, "127.0.0.1", **flags), REPO)
            out[f"{scheme}/{label}"] = round((time.perf_counter() - start) / calls * 1e6, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per kind (all rounds)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cost", type=int, default=10, help="bcrypt cost of the htpasswd entries")
    parser.add_argument("--wait-quiet", type=float, default=60)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-auth-")
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "args": vars(args), "cpus": os.cpu_count(),
               "hook_us": hook_cost(folder, args.cost)}
    for scheme in ("token", "basic"):
        server = start_ours(workers=args.workers, extra_args=["--config", write_config(folder, scheme, args.cost)])
        try:
            if scheme == "token":
                push_image(server.url, {"Authorization": f"Bearer {token(server.url, f'repository:{REPO}:pull,push')}"})
                auth = {"Authorization": f"Bearer {token(server.url, f'repository:{REPO}:pull')}"}
            else:
                push_image(server.url, {"Authorization": basic(0)})
                auth = {"Authorization": basic(0)}
            results["quiet"] = wait_for_quiet(args.wait_quiet)
            kinds = {"anonymous": {}, scheme if scheme == "basic" else "bearer": auth}
            results[scheme] = compare(server.url, kinds, args.duration, args.rounds, args.concurrency)
            results[f"{scheme}_interleaved"] = interleaved(server.url, kinds, args.duration, args.concurrency)
            if scheme == "basic":
                results["basic_first_request"] = first_requests(server.url, args.cost)
        finally:
            server.stop()
    report(results)


def report(results: dict) -> None:
    rows = ["| server | kind | req/s (mean of rounds) | per round | median ms | p95 ms | anonymous/this |",
            "|---|---|---|---|---|---|---|"]
    for scheme in ("token", "basic"):
        anonymous = results[scheme]["anonymous"]["rate"]
        for kind, row in results[scheme].items():
            rows.append(f"| {scheme} | {kind} | {row['rate']} | {', '.join(map(str, row['rounds']))} | "
                        f"{row['median_ms']} | {row['p95_ms']} | {anonymous / row['rate']:.3f} |")
    rows.append("\nInterleaved (each client thread alternates the two kinds request by request):\n")
    rows += ["| server | kind | requests | median ms | mean ms | p95 ms | this/anonymous (mean) |",
             "|---|---|---|---|---|---|---|"]
    for scheme in ("token", "basic"):
        table = results[f"{scheme}_interleaved"]
        for kind, row in table.items():
            rows.append(f"| {scheme} | {kind} | {row['requests']} | {row['median_ms']} | {row['mean_ms']} | "
                        f"{row['p95_ms']} | {row['mean_ms'] / table['anonymous']['mean_ms']:.3f} |")
    rows.append("\nThe check itself, in process (us per request): "
                + ", ".join(f"{k} {v}" for k, v in results["hook_us"].items()) + ".")
    first = results["basic_first_request"]
    rows.append(f"\nFirst request with new Basic credentials (bcrypt cost {first['bcrypt_cost']}): median "
                f"{first['first_median_ms']} ms; the same credentials again: {first['cached_median_ms']} ms.")
    print("\n".join(rows))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, time.strftime("auth-%Y%m%d-%H%M%S.json"))
    with open(path, "w") as out:
        json.dump(results, out, indent=2)
    print(f"\nJSON: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
