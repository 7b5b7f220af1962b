"""What recovery costs: the index rebuilt after a flush, verified after a Redis crash, and the journal's
price on every manifest push.

Three measurements on ``registry-ext serve`` (2 workers, embedded Redis), loopback only:

``rebuild``  populate ``--tags`` tags over ``--repos`` repositories, ``FLUSHDB`` the embedded Redis,
             then poll ``tags/list`` (and a manifest GET by tag) every 20 ms: seconds until the listing
             is whole again, how many listing answers were 503 meanwhile (never a wrong 200/404
             counted as success: every 200 is checked for the full tag count), and whether pulls
             answered 200 throughout.
``verify``   SIGKILL the embedded redis-server (the supervisor restarts it from its AOF with a new
             ``run_id``): seconds until the index marker names the new ``run_id`` again (a
             verification of every repository), and the listing answers meanwhile.
``journal``  manifests pushed per second (``populate``, the same tags) on this tree and on
             ``--base`` (default: the commit before the journal), alternating rounds, plus Debian's
             ``docker-registry`` in the same run as the peer.

    .venv/bin/python -m bench.recovery --tags 10000 --repos 10
    .venv/bin/python -m bench.recovery --only journal --tags 2000 --rounds 3

Prints Markdown; writes JSON to bench/results/. Figures: docs/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time

import requests

from bench._common import redis_cli, wait_for_quiet
from bench.listings import snapshot_ours
from bench.peer import peer_registry, start_ours
from bench.populate import generated_tags, populate
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
BASE_COMMIT = "0c830b8"  # main before the journal and the maintenance thread
POLL = 0.02


def fill(url: str, tags: int, repos: int) -> list[str]:
    names = [f"bench/r{i}" for i in range(repos)]
    per = max(1, tags // repos)
    for name in names:
        summary = populate(url, name, generated_tags(per), concurrency=8, quiet=True)
        assert summary["errors"] == 0, summary["error_samples"]
    return names


def watch(url: str, repo: str, expected: int, done, timeout: float = 600.0) -> dict:
    """Poll a listing and a pull until ``done()``; count answers by kind."""
    counts = {"listing_503": 0, "listing_whole": 0, "listing_wrong": 0, "pull_ok": 0, "pull_failed": 0}
    sess = requests.Session()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        listing = sess.get(f"{url}/v2/{repo}/tags/list", timeout=30)
        if listing.status_code == 503:
            counts["listing_503"] += 1
        elif listing.status_code == 200 and len(listing.json()["tags"]) == expected:
            counts["listing_whole"] += 1
        else:
            counts["listing_wrong"] += 1
        pull = sess.head(f"{url}/v2/{repo}/manifests/{generated_tags(1)[0]}", timeout=30)
        counts["pull_ok" if pull.status_code == 200 else "pull_failed"] += 1
        if done(listing):
            break
        time.sleep(POLL)
    counts["seconds"] = round(time.perf_counter() - t0, 3)
    return counts


def marker(sock: str) -> tuple[str, str]:
    built_on = redis_cli(sock, ["hget", "regext:{meta}", "run_id"]).strip()
    live = next(line.split(":", 1)[1].strip() for line in redis_cli(sock, ["info", "server"]).splitlines()
                if line.startswith("run_id:"))
    return built_on, live


def measure_rebuild_and_verify(args) -> dict:
    server = start_ours(workers=2)
    try:
        names = fill(server.url, args.tags, args.repos)
        sock = os.path.join(server.data_dir, "redis", "redis.sock")
        expected = len(requests.get(f"{server.url}/v2/{names[0]}/tags/list").json()["tags"])
        wait_for_quiet(args.wait_quiet)
        redis_cli(sock, ["flushdb"])
        rebuild = watch(server.url, names[0], expected,
                        lambda r: r.status_code == 200 and len(r.json()["tags"]) == expected)
        pid = int(next(line.split(":")[1] for line in redis_cli(sock, ["info", "server"]).splitlines()
                       if line.startswith("process_id:")))
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
        verify = watch(server.url, names[0], expected, lambda r: _verified(sock))
        return {"tags": args.tags, "repos": args.repos, "rebuild": rebuild, "verify": verify}
    finally:
        server.stop()


def _verified(sock: str) -> bool:
    try:
        built_on, live = marker(sock)
    except Exception:  # noqa: BLE001 - redis is restarting
        return False
    return built_on == live


def measure_journal(args) -> dict:
    wrapper, src, commit = snapshot_ours(args.base)
    rates: dict[str, list[float]] = {"head": [], "base": [], "peer": []}
    tags = generated_tags(args.tags)
    try:
        for round_no in range(args.rounds):
            order = ["head", "base", "peer"] if round_no % 2 == 0 else ["peer", "base", "head"]
            for kind in order:
                wait_for_quiet(args.wait_quiet)
                rates[kind].append(_populate_rate(kind, wrapper, tags))
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return {"base_commit": commit, "tags": args.tags, "rates": rates}


def _populate_rate(kind: str, wrapper: str, tags: list[str]) -> float:
    if kind == "peer":
        with peer_registry() as peer:
            return populate(peer.url, "bench/app", tags, concurrency=8, quiet=True)["manifests_per_second"]
    server = start_ours(workers=2, **({"binary": wrapper} if kind == "base" else {}))
    try:
        return populate(server.url, "bench/app", tags, concurrency=8, quiet=True)["manifests_per_second"]
    finally:
        server.stop()


def report(result: dict) -> str:
    lines = []
    if "rebuild" in result:
        for step in ("rebuild", "verify"):
            r = result[step]
            lines.append(f"| {step} | {result['tags']:,} tags / {result['repos']} repos | {r['seconds']} s | "
                         f"{r['listing_503']} | {r['listing_whole']} | {r['listing_wrong']} | "
                         f"{r['pull_ok']}/{r['pull_ok'] + r['pull_failed']} |")
        lines.insert(0, "| step | size | until whole | listing 503s | whole listings | wrong listings | pulls ok |\n"
                        "|---|---|---|---|---|---|---|")
    if "journal" in result:
        j = result["journal"]
        med = {k: sorted(v)[len(v) // 2] for k, v in j["rates"].items()}
        lines.append(f"\nmanifest PUT/s (populate, {j['tags']} tags, median of {len(j['rates']['head'])} rounds): "
                     f"this tree {med['head']:.0f}, base {j['base_commit'][:7]} {med['base']:.0f} "
                     f"({med['head'] / med['base']:.2f}x), docker-registry {med['peer']:.0f} "
                     f"(ours {med['head'] / med['peer']:.2f}x the peer); all rounds: {json.dumps(j['rates'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=10000, help="tags in all (default 10000)")
    ap.add_argument("--repos", type=int, default=10, help="repositories they are spread over (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="journal: alternating rounds (default 3)")
    ap.add_argument("--base", default=BASE_COMMIT, help=f"journal: the commit to compare with ({BASE_COMMIT})")
    ap.add_argument("--only", choices=["recovery", "journal"], help="run one part")
    ap.add_argument("--wait-quiet", type=float, default=60, help="wait up to S s for an idle machine (60)")
    args = ap.parse_args(argv)
    result: dict = {}
    if args.only != "journal":
        result.update(measure_rebuild_and_verify(args))
    if args.only != "recovery":
        result["journal"] = measure_journal(args)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"recovery-{int(time.time())}.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
