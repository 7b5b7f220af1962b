"""The Markdown table and notes ``tags_list.py`` (and ``run_all.py``) print from a results dict (not a script)."""
from __future__ import annotations


from bench._common import fmt_num
def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def tags_cell(x: dict) -> str:
    if "tags_per_op" not in x:
        return "-"
    return f"{fmt_num(x['tags_per_op'], 0)} ({fmt_num(x['pages_per_op'], 0)})"


def markdown(results: dict) -> str:
    ops = results["operations"]
    lines = [
        "| operation | ours req/s | peer req/s | **ours/peer** | ours p50 ms | peer p50 ms | ours p95 ms "
        "| peer p95 ms | ours bytes/op | peer bytes/op | ours tags/op (pages) | peer tags/op (pages) "
        "| ours srv CPU ms/op | peer srv CPU ms/op |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op, r in ops.items():
        o, p = r["ours"], r["peer"]
        rat = r["ratio_ours_over_peer"]
        lines.append("| " + " | ".join([
            f"`{op}`", fmt_num(o["ops_per_s"]), fmt_num(p["ops_per_s"]),
            f"**{rat:.2f}**" if rat is not None else "n/a",
            fmt_num(o["p50_ms"], 2), fmt_num(p["p50_ms"], 2), fmt_num(o["p95_ms"], 2), fmt_num(p["p95_ms"], 2),
            fmt_num(round(o["bytes_per_op"]) if o["bytes_per_op"] is not None else None),
            fmt_num(round(p["bytes_per_op"]) if p["bytes_per_op"] is not None else None),
            tags_cell(o), tags_cell(p),
            fmt_num(o["server_cpu_ms_per_op"], 3), fmt_num(p["server_cpu_ms_per_op"], 3),
        ]) + " |")
    return "\n".join(lines)


def notes(results: dict) -> list[str]:
    out = []
    chk = results.get("checks", {})
    for name in ("ours", "peer"):
        c = chk.get(name)
        if not c:
            continue
        fl, n1, w = c["full_list"], c["n100"], c["n100_walk"]
        out.append(f"{name}: full list {fl['tags']} tags in {fl['pages']} page(s), {fl['bytes']:,} bytes,"
                   f" lexical order: {fl['lexical_order']}; ?n=100 returned {n1['tags_returned']} tags"
                   f" (Link: {'yes' if n1['link'] else 'no'}); n=100 walk: {w['tags']} tags in {w['pages']}"
                   f" page(s), complete: {w['complete']}, duplicates: {w['duplicates']};"
                   f" ?n=10&last=<median>: {c.get('n10_last', {}).get('tags_returned')} tags,"
                   f" lexical-after-last: {c.get('n10_last', {}).get('matches_lexical_after_last')}")
    m = chk.get("manifests")
    if m:
        out.append(f"manifests: {m['sampled']} sampled tags; body mismatches ours vs peer:"
                   f" {len(m['body_mismatch'])}; digest-header mismatches: {len(m['digest_mismatch'])};"
                   f" HEAD/GET mismatches: {len(m['head_mismatch'])}; bad statuses: {len(m['bad_status'])};"
                   f" content types: {m['content_types']}")
        for key in ("body_mismatch", "digest_mismatch", "head_mismatch", "bad_status"):
            for s in m[key][:3]:
                out.append(f"  {key}: {s}")
    if chk.get("tag_sets_equal") is False:
        out.append(f"TAG SETS DIFFER: only ours {chk.get('only_ours_count')}, only peer {chk.get('only_peer_count')}"
                   f" (e.g. {chk.get('only_ours_sample')} / {chk.get('only_peer_sample')})")
    for op, r in results["operations"].items():
        for side in ("ours", "peer"):
            if r[side]["errors"]:
                out.append(f"{op} {side}: {r[side]['errors']} errors, e.g. {r[side]['error_samples']}")
    cs = [r[s]["client_cpu_share"] for r in results["operations"].values() for s in ("ours", "peer")
          if r[s]["client_cpu_share"] is not None]
    if cs:
        out.append(f"client CPU (the load generator, same 2-core box): {min(cs):.2f}-{max(cs):.2f} cores"
                   " during the timed runs.")
    rows = []
    for op, r in results["operations"].items():
        for side in ("ours", "peer"):
            x = r[side]
            if x.get("server_cpu_share") is not None:
                rows.append(f"{op}/{side} srv {x['server_cpu_share']:.2f} cli {x['client_cpu_share']:.2f}"
                            f" other {x.get('other_cpu_share', 0):.2f}")
    if rows:
        out.append("CPU cores used (server / client / everything else on the machine): " + "; ".join(rows))
    return out
