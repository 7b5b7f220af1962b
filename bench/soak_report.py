"""The soak's figures (``soak.py``): requests per kind, latencies, memory, and what went wrong.

Not a script. ``merge`` adds up the client processes' counts and latencies per request kind;
``problems`` lists every failed expectation of a run (the soak passes when it is empty, and
``tests/e2e/test_soak.py`` asserts exactly that); ``markdown`` renders the summary.
"""
from __future__ import annotations

from bench._common import percentile


def merge(loads: list[dict], wall: float) -> dict:
    """Per kind: count, rate, p50/p99 latency, statuses, unexpected answers; plus a total."""
    kinds: dict[str, dict] = {}
    for load in loads:
        for kind, entry in load["kinds"].items():
            into = kinds.setdefault(kind, {"ms": [], "statuses": {}, "unexpected": 0})
            into["ms"] += entry["ms"]
            into["unexpected"] += entry["unexpected"]
            for status, count in entry["statuses"].items():
                into["statuses"][status] = into["statuses"].get(status, 0) + count
    out = {}
    every: list[float] = []
    for kind, entry in sorted(kinds.items()):
        latencies = sorted(entry["ms"])
        every += latencies
        out[kind] = _figures(latencies, wall, entry["statuses"], entry["unexpected"])
    statuses: dict[str, int] = {}
    for entry in out.values():
        for status, count in entry["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    out["total"] = _figures(sorted(every), wall, statuses, sum(e["unexpected"] for e in out.values()))
    return out


def _figures(latencies: list[float], wall: float, statuses: dict, unexpected: int) -> dict:
    return {"count": len(latencies), "per_s": round(len(latencies) / wall, 1) if wall else None,
            "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "statuses": dict(sorted(statuses.items())), "unexpected": unexpected}


def server_errors(result: dict) -> int:
    """5xx answers and transport errors the clients saw."""
    statuses = result["requests"]["total"]["statuses"]
    return sum(n for s, n in statuses.items() if s.startswith("5") or s == "error")


def problems(result: dict) -> list[str]:
    """Every failed expectation of a soak run (empty: it passed). Memory is judged by the caller."""
    found = []
    if server_errors(result):
        found.append(f"{server_errors(result)} 5xx answers or transport errors")
    for key in ("unexpected", "mismatches", "stuck_threads"):
        if result[key]:
            found.append(f"{result[key]} {key.replace('_', ' ')}")
    if result["verify"]["lost"]:
        found.append(f"{result['verify']['lost']} acknowledged facts lost: {result['verify']['lost_samples'][:5]}")
    for key in ("check_under_load", "check"):
        check = result[key]
        if check.get("exit") != 0 or check.get("findings"):
            found.append(f"{key.replace('_', ' ')}: exit {check.get('exit')}, {check.get('findings')} "
                         f"{check.get('stderr', '')[-300:]}")
    found += [f"{n} {what.replace('_', ' ')} left" for what, n in result["leftovers"].items() if n]
    log = result["server_log"]
    found += [f"server log: {log[k]} {k.replace('_', ' ')}" for k in ("status_5xx", "tracebacks", "worker_timeouts")
              if log[k]]
    if result["workers_before"] != result["workers_after"]:
        found.append(f"gunicorn workers changed: {result['workers_before']} -> {result['workers_after']}")
    return found


def rss_growth(result: dict) -> dict[str, float]:
    """Per gunicorn worker: RSS at the end minus RSS after warm-up, in MiB."""
    warm, end = result["rss"]["after_warmup"]["rss_mib"], result["rss"]["end"]["rss_mib"]
    return {label: round(end[label] - warm[label], 1) for label in end
            if label.startswith("worker ") and label in warm}


def passed(result: dict) -> bool:
    return not problems(result)


def _rss_table(result: dict) -> list[str]:
    rss = result["rss"]
    labels = list(rss["end"]["rss_mib"])
    peak = {label: max(s["rss_mib"].get(label, 0) for s in rss["series"] + [rss["end"]]) for label in labels}
    lines = [f"| process | start MiB | after warm-up ({rss['after_warmup']['t']:.0f} s) MiB | "
             f"end ({rss['end']['t']:.0f} s) MiB | peak MiB |", "|---|---:|---:|---:|---:|"]
    for label in labels:
        cells = [rss[p]["rss_mib"].get(label) for p in ("start", "after_warmup", "end")]
        lines.append(f"| {label} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells)
                     + f" | {peak[label]:.1f} |")
    return lines


def markdown(result: dict) -> str:
    """The summary: requests, latency, memory, verification."""
    cfg, req = result["config"], result["requests"]
    lines = [f"## Soak: {cfg['seconds']:.0f} s, {cfg['clients']} client processes x {cfg['threads']} threads",
             "", "| kind | requests | req/s | p50 ms | p99 ms | statuses | unexpected |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for kind, f in req.items():
        statuses = ", ".join(f"{s}: {n}" for s, n in f["statuses"].items())
        name = f"**{kind}**" if kind == "total" else f"`{kind}`"
        lines.append(f"| {name} | {f['count']:,} | {f['per_s']} | {f['p50_ms']} | {f['p99_ms']} | {statuses} "
                     f"| {f['unexpected']} |")
    verify, log = result["verify"], result["server_log"]
    check, during = result["check"], result["check_under_load"]
    lines += ["", *_rss_table(result), "",
              f"- 5xx / transport errors: {server_errors(result)}; unexpected statuses: {result['unexpected']}; "
              f"wrong content: {result['mismatches']}",
              f"- acknowledged pushes: {verify['acknowledged_pushes']:,}; facts read back: "
              + ", ".join(f"{k} {n:,}" for k, n in verify["facts_checked"].items()) + f"; **lost: {verify['lost']}**",
              f"- `registry-ext check` half-way, under load: exit {during.get('exit')}, findings: "
              f"{during.get('findings')}; at the end: exit {check['exit']}, {check['repositories']} repositories, "
              f"findings: {check['findings']}",
              f"- left over: {result['leftovers']}",
              f"- gunicorn: requests per worker {log['requests_by_worker']}, 5xx {log['status_5xx']}, tracebacks "
              f"{log['tracebacks']}, worker timeouts {log['worker_timeouts']}, workers booted {log['workers_booted']}",
              f"- worker RSS growth after warm-up (MiB): {rss_growth(result)}"]
    found = problems(result)
    lines.append("- **passed**" if not found else "- **FAILED**: " + "; ".join(found))
    if result["samples_of_wrong_answers"]:
        lines += ["", "Wrong answers (samples):", *[f"    {s}" for s in result["samples_of_wrong_answers"][:10]]]
    return "\n".join(lines)
