"""Deployment benchmarks: the registry behind nginx, run from the files in deploy/.

Two commands (loopback only; every loop is bounded in count and time):

``workers``  which gunicorn worker class and counts to ship. For each candidate
             (sync, gthread with several thread counts, gevent when importable) it
             starts redis-server, gunicorn (``-c deploy/gunicorn.conf.py`` plus the
             candidate's ``-k/--workers/--threads``) and nginx (deploy/nginx.conf),
             then runs a mixed load for ``--duration`` seconds: small requests
             (manifest HEAD and tags/list), blob pulls, and ``--slow`` clients that
             trickle an upload (chunked PATCH, 16 KiB every 0.25 s) for the whole run.
             ``--mode app`` makes the app stream blobs itself (no X-Accel-Redirect).

``peer``     ours (gunicorn with the shipped settings) against Debian's
             ``docker-registry`` (distribution 2.8), both behind the same nginx
             site config, in alternating rounds: blob pull throughput (bodies
             spliced to /dev/null in the kernel, so the client is not the limit),
             push throughput, manifest HEAD and tags/list of a 10-tag repository.

    .venv/bin/python -m bench.workers workers --duration 20
    .venv/bin/python -m bench.workers peer --rounds 3

Prints Markdown tables; writes JSON to bench/results/ (gitignored). Figures are
in docs/deployment.md and docs/benchmarks.md ("Deployment behind nginx").
"""
# The parts: workers_stack.py (the deployment: redis-server, gunicorn, nginx, the peer),
# workers_load.py (clients), workers_mixed.py (``workers``), workers_peer.py (``peer``).
from __future__ import annotations

import argparse
import json
import shutil
import time

from bench.workers_mixed import CANDIDATES, cmd_workers
from bench.workers_peer import OPS, cmd_peer
from bench.workers_stack import ROOT
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("workers", help="compare gunicorn worker classes under a mixed load")
    w.add_argument("--candidates", nargs="*", choices=list(CANDIDATES), help="default: all")
    w.add_argument("--duration", type=float, default=20.0)
    w.add_argument("--small", type=int, default=4, help="threads of small requests")
    w.add_argument("--pulls", type=int, default=2, help="threads pulling a blob")
    w.add_argument("--pull-mib", type=int, default=64)
    w.add_argument("--slow", type=int, default=8, help="slow uploaders")
    w.add_argument("--mode", choices=("accel", "app"), default="accel",
                   help="accel: nginx sends blobs (X-Accel-Redirect); app: gunicorn streams them")
    w.add_argument("--rounds", type=int, default=2, help="runs per candidate, interleaved")
    w.add_argument("--wait-quiet", type=float, default=120.0,
                   help="before each run wait up to S s for an idle machine (0: do not wait)")
    p = sub.add_parser("peer", help="ours vs docker-registry, both behind nginx")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--pull-mib", type=int, default=256)
    p.add_argument("--push-mib", type=int, default=64)
    p.add_argument("--ops", nargs="*", default=list(OPS), choices=OPS)
    p.add_argument("--wait-quiet", type=float, default=120.0,
                   help="before each timed run wait up to S s for an idle machine (0: do not wait)")
    args = parser.parse_args()
    for tool in ("nginx", "redis-server") + (("docker-registry",) if args.command == "peer" else ()):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    results = cmd_workers(args) if args.command == "workers" else cmd_peer(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"workers-{args.command}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))
    print(f"\nJSON: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
