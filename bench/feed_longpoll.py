"""2,000 concurrent long-polls of the update feed held on the deploy/ stack, then one push.

The stack: redis-server, gunicorn (deploy/gunicorn.conf.py, 2 gthread workers x 16 threads),
``registry-ext feed-waiter`` and nginx (deploy/nginx.conf, deploy/nginx-standalone.conf), started by
``workers_stack.Stack(waiter=True)``. Per round:

1. ``--clients`` long-polls (``wait=--wait``) are opened at once from this process (asyncio, one
   connection each) on one repository; the test checks none is answered while nothing changes;
2. for ``--idle`` seconds nothing happens: CPU seconds and resident memory of the waiter, nginx,
   gunicorn and redis are sampled (``/proc``), and a ``tags/list`` probe shows gunicorn still free;
3. one tag is pushed; the delay from the push's answer to each long-poll's answer is recorded
   (median, p99, the last one: "all answered");
4. the floor: the same client against a bare asyncio server answering as many connections at once
   (what the one-process Python client itself needs to take the answers in).

Memory is also read before the polls, so the cost per held poll is the difference. Loopback only;
the client shares the machine's cores with the stack (reported as measured).

    .venv/bin/python -m bench.feed_longpoll                    # 2,000 polls, 3 rounds: ~2 minutes
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import (RESULTS_DIR, FastClient, free_port, percentile, proc_tree_cpu_seconds,
                     proc_tree_rss_mb)
from bench.feed import manifest, populate
from bench.workers_stack import Stack
REPO = "longpoll/app"

# The floor: a bare asyncio server (another process) holding the same connections and answering all at
# once when a last connection arrives; what this client needs to take in that many answers.
FLOOR_SERVER = """
import asyncio, resource, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
clients, port = int(sys.argv[1]), int(sys.argv[2])
async def main():
    seen, go = 0, asyncio.Event()
    body = b'{"events":[],"next":"' + b"A" * 66 + b'","more":false}'
    async def handle(reader, writer):
        nonlocal seen
        await reader.readuntil(b"\\r\\n\\r\\n")
        seen += 1
        if seen > clients:
            go.set()
        await go.wait()
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=8192)
    await server.serve_forever()
asyncio.run(main())
"""


async def long_poll(port: int, path: str, done: dict, index: int) -> None:
    # several checkers: 8 source addresses (nginx caps held long-polls per address, deploy/nginx.conf)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.0.{2 + index % 8}", 0))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    body = await reader.readexactly(length)
    done[index] = (time.monotonic(), int(head.split()[1]), body)
    writer.close()


def components(stack: Stack) -> dict[str, int]:
    return {server.kind: server.proc.pid for server in stack.procs}


def sample(stack: Stack) -> dict:
    return {kind: {"cpu_s": proc_tree_cpu_seconds(pgid), "rss_mb": round(proc_tree_rss_mb(pgid), 1)}
            for kind, pgid in components(stack).items()}


async def one_round(stack: Stack, clients: int, wait: int, idle: float) -> dict:
    port = int(stack.url.rsplit(":", 1)[1])
    http = FastClient(stack.url)
    status, body, _ = http.request("GET", f"/v2/_regext/updates?repository={REPO}")
    cursor = json.loads(body)["next"]
    before = sample(stack)
    done: dict = {}
    path = f"/v2/_regext/updates?repository={REPO}&cursor={cursor}&wait={wait}"
    tasks = [asyncio.ensure_future(long_poll(port, path, done, i)) for i in range(clients)]
    await asyncio.sleep(3)
    assert not done, f"{len(done)} long-polls answered with nothing new: {list(done.values())[:2]}"
    held = sample(stack)
    await asyncio.sleep(idle)
    after_idle = sample(stack)
    probe = time.perf_counter()
    assert FastClient(stack.url).request("GET", f"/v2/{REPO}/tags/list")[0] == 200
    probe_ms = (time.perf_counter() - probe) * 1000
    status, body, _ = await asyncio.to_thread(http.request, "PUT", f"/v2/{REPO}/manifests/t{time.time_ns()}",
                                              None, manifest(REPO, time.time_ns()))
    pushed = time.monotonic()
    assert status == 201, body
    await asyncio.wait_for(asyncio.gather(*tasks), wait + 30)
    delays = sorted(at - pushed for at, _status, _body in done.values())
    statuses = {status for _at, status, _body in done.values()}
    with_event = sum(1 for _at, _s, body in done.values() if json.loads(body)["events"])
    return {
        "clients": clients, "answered": len(done), "statuses": sorted(statuses), "with_the_event": with_event,
        "delay_ms": {"p50": round(percentile(delays, 50) * 1000, 1), "p99": round(percentile(delays, 99) * 1000, 1),
                     "all": round(delays[-1] * 1000, 1)},
        "idle_seconds": idle, "tags_list_probe_ms": round(probe_ms, 2),
        "idle_cpu_percent": {k: round((after_idle[k]["cpu_s"] - held[k]["cpu_s"]) / idle * 100, 2) for k in held},
        "rss_mb_before": {k: v["rss_mb"] for k, v in before.items()},
        "rss_mb_held": {k: v["rss_mb"] for k, v in after_idle.items()},
    }


async def floor(clients: int) -> float:
    """Milliseconds until this client has every answer of a bare server answering all at once."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, str(clients), str(port)])
    try:
        await asyncio.sleep(1)
        done: dict = {}
        tasks = [asyncio.ensure_future(long_poll(port, "/", done, i)) for i in range(clients)]
        await asyncio.sleep(3)
        started = time.monotonic()
        trigger = asyncio.ensure_future(long_poll(port, "/", {}, -1))
        await asyncio.gather(*tasks, trigger)
        return round((max(at for at, _s, _b in done.values()) - started) * 1000, 1)
    finally:
        proc.kill()
        proc.wait()


def report(rounds: list[dict]) -> str:
    def spread(values):
        return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"

    kinds = sorted(rounds[0]["rss_mb_held"])
    lines = [f"{rounds[0]['clients']} long-polls held on the deploy/ stack, {len(rounds)} rounds: median (min-max).",
             "",
             "| | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for label, field in (("RSS before, MiB", "rss_mb_before"), ("RSS while held, MiB", "rss_mb_held")):
        lines.append(f"| {label} | " + " | ".join(spread([r[field][k] for r in rounds]) for k in kinds) + " |")
    lines.append("| CPU while held and idle, % of a core | "
                 + " | ".join(spread([r["idle_cpu_percent"][k] for r in rounds]) for k in kinds) + " |")
    lines += ["", "Push to answers: p50 " + spread([r["delay_ms"]["p50"] for r in rounds]) + " ms, p99 "
              + spread([r["delay_ms"]["p99"] for r in rounds]) + " ms, all answered "
              + spread([r["delay_ms"]["all"] for r in rounds]) + " ms; a tags/list while they were held: "
              + spread([r["tags_list_probe_ms"] for r in rounds]) + " ms; answers with the event: "
              + ", ".join(str(r["with_the_event"]) for r in rounds) + ".",
              "The client alone, against a bare asyncio server answering as many at once: all answered after "
              + spread([r["client_floor_ms"] for r in rounds]) + " ms."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--wait", type=int, default=60)
    ap.add_argument("--idle", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.clients + 100:
        raise SystemExit(f"the open-file limit ({hard}) is too low for {args.clients} connections")
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-longpoll-")), [], waiter=True).start()
    try:
        populate(stack.url, [REPO], 1)
        rounds = []
        for i in range(args.rounds):
            rounds.append(asyncio.run(one_round(stack, args.clients, args.wait, args.idle)))
            rounds[-1]["client_floor_ms"] = asyncio.run(floor(args.clients))
            print(f"round {i + 1}: {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)
    finally:
        stack.stop()
    text = report(rounds)
    print(text)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"feed-longpoll-{int(time.time())}.json"), "w") as fh:
        json.dump({"args": vars(args), "rounds": rounds, "report": text}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
