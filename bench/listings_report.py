"""Targets, verdicts and the Markdown report of ``listings.py`` (not a script)."""
from __future__ import annotations

import os
import platform
import subprocess

from bench import peer as peer_mod
from bench._common import fmt_num
from bench.run_all import cpu_model, ours_version

TARGETS = {"scale_p50_ratio": 2.0, "vs_peer_throughput": 10.0, "bytes_pct": 2.0}
SCALE_LABELS = ("semver_top", "semver_deep", "updated_top", "semver_release", "index_semver")


def machine_meta() -> dict:
    try:
        redis_ver = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                                   timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        redis_ver = f"unknown ({exc})"
    return {"machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "kernel": platform.release(),
                        "python": platform.python_version()},
            "peer_version": peer_mod.peer_version(), "ours_version": ours_version(peer_mod.OURS_BINARY),
            "redis_version": redis_ver}


def _cell(group: dict, name: str) -> dict | None:
    return group["cells"].get(name)           # exact: "ours@1000" is a prefix of "ours@100000"


def load(path: str) -> dict:
    """A results JSON back into the in-memory shape (JSON made the integer keys strings)."""
    import json
    with open(path) as fh:
        results = json.load(fh)

    def ints(d):
        return {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in d.items()}
    for path_ in (("meta", "repos"), ("bytes", "by_size"), ("checks",)):
        parent = results
        for key in path_[:-1]:
            parent = parent[key]
        parent[path_[-1]] = ints(parent[path_[-1]])
    return results


def _ratio(a, b):
    return a / b if a is not None and b else None


def evaluate(results: dict) -> None:
    big, small = results["meta"]["big"], results["meta"]["small"]
    v: dict = {"scale": [], "vs_peer": [], "bytes": None}
    for g in results["groups"]:
        if g["label"] in SCALE_LABELS:
            b, s = _cell(g, f"ours@{big}"), _cell(g, f"ours@{small}")
            r50, r95 = _ratio(b["p50_ms"], s["p50_ms"]), _ratio(b["p95_ms"], s["p95_ms"])
            v["scale"].append({"op": g["label"], "c": g["concurrency"], "ratio_p50": r50, "ratio_p95": r95,
                               "pass": r50 is not None and r50 <= TARGETS["scale_p50_ratio"]})
        elif g["label"] == "vs_peer":
            peer = _cell(g, f"peer@{big}:plain_full")
            for op in ("semver_top", "updated_top"):
                r = _ratio(_cell(g, f"ours@{big}:{op}")["ops_per_s"], peer["ops_per_s"])
                v["vs_peer"].append({"op": op, "c": g["concurrency"], "ratio": r,
                                     "pass": r is not None and r >= TARGETS["vs_peer_throughput"]})
    by = results["bytes"]["by_size"][results["bytes"]["newer_size"]]
    v["bytes"] = {"pct": by["pct_of_ours_plain"], "pass": by["pct_of_ours_plain"] <= TARGETS["bytes_pct"],
                  "largest_n_within_target": results["bytes"]["largest_n_within_target"]}
    results["verdicts"] = v


def _pf(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def _populate_md(results: dict) -> list[str]:
    out = ["| side | tags | manifests/s | server CPU ms/put | wall s | errors | other CPU (cores) |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for key, p in results["populate"].items():
        side, size = key.split("/")
        if p.get("reused"):
            out.append(f"| {side} | {int(size):,} | (already populated: data reused) | | | | |")
            continue
        out.append(f"| {side} | {int(size):,} | {fmt_num(p['manifests_per_second'])} "
                   f"| {fmt_num(p.get('server_cpu_ms_per_put'), 2)} | {fmt_num(p['wall_seconds'])} | {p['errors']} "
                   f"| {fmt_num(p.get('other_cpu_share'), 2)} |")
    return out


def _scale_md(results: dict) -> list[str]:
    big, small = results["meta"]["big"], results["meta"]["small"]
    out = [f"| operation | c | {small:,}: p50 ms | p95 ms | req/s | {big:,}: p50 ms | p95 ms | req/s "
           f"| **p50 {big:,}/{small:,}** | p95 ratio | target ≤ {TARGETS['scale_p50_ratio']:g}x "
           "| other CPU (cores) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    verdicts = {(x["op"], x["c"]): x for x in results["verdicts"]["scale"]}
    for g in results["groups"]:
        if g["label"] not in SCALE_LABELS:
            continue
        b, s = _cell(g, f"ours@{big}"), _cell(g, f"ours@{small}")
        x = verdicts[(g["label"], g["concurrency"])]
        other = max((c.get("other_cpu_share") or 0) for c in g["cells"].values())
        out.append(f"| `{g['label']}` | {g['concurrency']} | {fmt_num(s['p50_ms'], 2)} | {fmt_num(s['p95_ms'], 2)} "
                   f"| {fmt_num(s['ops_per_s'])} | {fmt_num(b['p50_ms'], 2)} | {fmt_num(b['p95_ms'], 2)} "
                   f"| {fmt_num(b['ops_per_s'])} | **{fmt_num(x['ratio_p50'], 2)}** | {fmt_num(x['ratio_p95'], 2)} "
                   f"| {_pf(x['pass'])} | {other:.2f} |")
    return out


def _vs_peer_md(results: dict) -> list[str]:
    big = results["meta"]["big"]
    out = ["| c | cell | req/s | p50 ms | p95 ms | bytes/op | tags/op | server CPU ms/op | other CPU (cores) |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for g in results["groups"]:
        if g["label"] != "vs_peer":
            continue
        for name, c in g["cells"].items():
            out.append(f"| {g['concurrency']} | `{name}` | {fmt_num(c['ops_per_s'])} | {fmt_num(c['p50_ms'], 2)} "
                       f"| {fmt_num(c['p95_ms'], 2)} | {fmt_num(round(c['bytes_per_op'] or 0))} "
                       f"| {fmt_num(c.get('tags_per_op'), 0)} | {fmt_num(c['server_cpu_ms_per_op'], 2)} "
                       f"| {fmt_num(c.get('other_cpu_share'), 2)} |")
    out += ["", f"| c | ours page at {big:,} tags | **ours req/s ÷ peer full tags/list req/s** "
            f"| target ≥ {TARGETS['vs_peer_throughput']:g}x |", "|---:|---|---:|---|"]
    for x in results["verdicts"]["vs_peer"]:
        out.append(f"| {x['c']} | `{x['op']}` | **{fmt_num(x['ratio'], 1)}** | {_pf(x['pass'])} |")
    return out


def _bytes_md(results: dict) -> list[str]:
    b = results["bytes"]
    size = b["newer_size"]
    base = b["by_size"][size]["plain_bytes"]
    out = [f"Full plain `tags/list` at {size:,} tags: ours {base['ours']:,} bytes, peer {base['peer']:,} bytes"
           " (bodies, without headers).", "",
           f"| `newer?n=` | tags in answer | bytes | % of ours' full list | % of the peer's | target ≤ "
           f"{TARGETS['bytes_pct']:g} % |", "|---:|---:|---:|---:|---:|---|"]
    for row in b["sweep"]:
        out.append(f"| {row['n']} | {row['count']} | {row['bytes']:,} | {row['pct_of_ours_plain']:.2f} "
                   f"| {row['pct_of_peer_plain']:.2f} | {_pf(row['pct_of_ours_plain'] <= TARGETS['bytes_pct'])} |")
    out += ["", "| repository | default `newer` answer: tags, bytes, complete | full plain list (ours / peer) "
            "| newer ÷ ours' full list |", "|---:|---|---|---:|"]
    for sz, r in b["by_size"].items():
        out.append(f"| {int(sz):,} tags | {r['newer_count']}, {r['newer_bytes']:,} B, {r['complete']} "
                   f"| {r['plain_bytes']['ours']:,} / {r['plain_bytes']['peer']:,} B "
                   f"| {r['pct_of_ours_plain']:.2f} % |")
    return out


def _memory_md(results: dict) -> list[str]:
    m = results["memory"]
    snaps = m["snapshots"]
    out = ["| after populating | used_memory | Δ used_memory | tags | Δ bytes/tag | used_memory_dataset |",
           "|---|---:|---:|---:|---:|---:|"]
    for prev, cur in zip([None] + snaps[:-1], snaps):
        size = cur["after"]
        if not isinstance(size, int):           # data reused: nothing was pushed, no delta
            out.append(f"| {size or 'start (before populating)'} | {cur['used_memory']:,} | | | "
                       f"| {fmt_num(cur.get('used_memory_dataset'))} |")
            continue
        delta = cur["used_memory"] - prev["used_memory"] if prev else None
        out.append(f"| {size:,} tags | {cur['used_memory']:,} "
                   f"| {fmt_num(delta)} | {fmt_num(size)} | {fmt_num(delta / size if delta and size else None)} "
                   f"| {fmt_num(cur.get('used_memory_dataset'))} |")
    repos = results["meta"]["repos"]
    sizes = {repo: int(size) for size, repo in repos.items()}
    patterns = sorted({p for rows in m["by_repo"].values() for p in rows if p != "_total"})
    cols = sorted(m["by_repo"], key=lambda r: sizes.get(r, 0))
    out += ["", "`MEMORY USAGE <key> SAMPLES 0`, bytes per tag (keys in brackets):", "",
            "| key (`regext:repo:{<name>}:...`) | type | "
            + " | ".join(f"{sizes.get(r, 0):,} tags" for r in cols) + " |",
            "|---|---|" + "---:|" * len(cols)]
    for p in patterns + ["_total"]:
        typ = next((m["by_repo"][r][p]["type"] for r in cols if p in m["by_repo"][r]), "")
        cells = []
        for r in cols:
            row = m["by_repo"][r].get(p)
            cells.append(f"{row['bytes_per_tag']:.1f} ({row['keys']:,})" if row else "-")
        name = "**total**" if p == "_total" else f"`{p}`"
        out.append(f"| {name} | {typ} | " + " | ".join(cells) + " |")
    out.append(f"\nKeys outside a repository: {m['other_keys']['keys']} ({m['other_keys']['bytes']:,} bytes);"
               f" keys in all: {m['keys_total']:,}.")
    return out


def _notes_md(results: dict) -> list[str]:
    out = []
    for size, c in results["checks"].items():
        out.append(f"- {int(size):,} tags: semver walk {c['semver_walk']['pages']} pages of 1000 in"
                   f" {c['semver_walk']['seconds']} s, updated walk {c['updated_walk']['pages']} pages in"
                   f" {c['updated_walk']['seconds']} s; `last` of `semver_deep` = `{c['mid']}` (position"
                   f" {c['mid_position']:,}); non-versions in `semver_top`: {c['semver_top_nonversions']};"
                   f" `1.2.3` has {c['newer_family_count']:,} newer tags in its family; problems:"
                   f" {len(c['problems'])}")
        out += [f"  - PROBLEM: {p}" for p in c["problems"]]
    for g in results["groups"]:
        if len(g["attempts"]) > 1:
            out.append(f"- {g['label']} c={g['concurrency']}: measured {len(g['attempts'])} times (other CPU per"
                       f" attempt {[a['max_other_cpu'] for a in g['attempts']]}), attempt {g['chosen_attempt']} kept")
        for name, c in g["cells"].items():
            if c["errors"]:
                out.append(f"- {g['label']} c={g['concurrency']} {name}: {c['errors']} errors, "
                           f"e.g. {c['error_samples']}")
    cli = [c["client_cpu_share"] for g in results["groups"] for c in g["cells"].values() if c["client_cpu_share"]]
    if cli:
        out.append(f"- client CPU during the timed runs: {min(cli):.2f}-{max(cli):.2f} cores")
    rss, data = results.get("rss_mb_after", {}), results.get("data_mb", {})
    out.append(f"- RSS MiB idle -> end: ours {fmt_num(results['idle_rss_mb'].get('ours'))} -> "
               f"{fmt_num(rss.get('ours'))}, peer {fmt_num(results['idle_rss_mb'].get('peer'))} -> "
               f"{fmt_num(rss.get('peer'))}; data MiB: ours {fmt_num(data.get('ours'))}, "
               f"peer {fmt_num(data.get('peer'))}")
    for name, alive in results.get("alive_at_end", {}).items():
        if not alive:
            out.append(f"- {name} HAD EXITED; log tail: {results['log_tail'][name]}")
    return out


def markdown(results: dict) -> str:
    meta = results["meta"]
    parts = [f"## Enriched listings: {meta['big']:,} vs {meta['small']:,} tags (label {results['label']})", "",
             f"- ours: {meta['ours_version']}; peer: {meta['peer_version']}; {meta['redis_version']}",
             f"- machine: {meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model']}), kernel"
             f" {meta['machine']['kernel']}; total {results['total_seconds']} s; load average (1, 5, 15 min)"
             f" at start {meta['loadavg_start']}, at end {meta['loadavg_end']}", "",
             "### Populate", "", *_populate_md(results), "",
             "### 1. 100-tag pages: big vs small repository", "", *_scale_md(results), "",
             "### 2. Throughput against the peer's full tags/list", "", *_vs_peer_md(results), "",
             "### 3. Bytes: newer than 1.2.3 vs the full list", "", *_bytes_md(results), "",
             "### 4. Redis memory", "", *_memory_md(results), "",
             "### Checks and notes", "", *_notes_md(results)]
    return "\n".join(parts)
