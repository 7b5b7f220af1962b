"""Render a :class:`~registry_ext.mirror.diff.Report`: a text table, JSON, or one self-contained HTML page.

The HTML has inline CSS, no scripts and no external resources; every value
from a registry is escaped.
"""
from __future__ import annotations

import dataclasses
import html
import json
from typing import Any

from registry_ext.mirror.diff import Report, RepoDiff

_SHORT = 19  # "sha256:" + 12 hex digits


def short(digest: str | None) -> str:
    return "-" if not digest else digest[:_SHORT]


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


def rows(r: RepoDiff) -> list[tuple[str, str, str, str, str]]:
    """(status, tag, A, B, note) rows of one repository's differences."""
    out = [("only in A", e["tag"], short(e["digest"]), "-", "") for e in r.only_a]
    out += [("only in B", e["tag"], "-", short(e["digest"]), "") for e in r.only_b]
    out += [("changed", e["tag"], short(e["digest_a"]), short(e["digest_b"]), e["note"] or "")
           for e in r.changed]
    for s in r.signatures:
        orphans = [side for side, flag in (("A", s["orphan_a"]), ("B", s["orphan_b"])) if flag]
        note = f"{s['kind']} of {short(s['subject'])}" + (f"; orphaned in {'+'.join(orphans)}" if orphans else "")
        status = {"only_a": "only in A", "only_b": "only in B"}.get(s["status"], s["status"])
        out.append((f"signature {status}", s["tag"], short(s["digest_a"]), short(s["digest_b"]), note))
    for side, entries in (("A", r.untagged_only_a), ("B", r.untagged_only_b)):
        for u in entries or ():
            note = f"referrer of {short(u['subject'])}" if u["subject"] else ""
            cells = (short(u["digest"]), "-") if side == "A" else ("-", short(u["digest"]))
            out.append((f"untagged only in {side}", "", *cells, note))
    return out


def repo_from_dict(data: dict[str, Any]) -> RepoDiff:
    """A :class:`RepoDiff` again from its ``to_dict`` form (the API's cached JSON answer)."""
    return RepoDiff(**{field.name: data[field.name] for field in dataclasses.fields(RepoDiff)})


def _short_tag(tag: str) -> str:
    """``sha256-<64 hex>.sig`` -> ``sha256-<12 hex>….sig`` for the text table; no control characters."""
    tag = "".join(c if c.isprintable() else "?" for c in tag)
    if tag.startswith("sha256-") and len(tag) >= 71:
        return tag[:19] + "…" + tag[71:]
    return tag


def _headline(r: RepoDiff) -> str:
    name = r.repo_a if r.repo_a == r.repo_b else f"{r.repo_a} -> {r.repo_b}"
    counts = (f"{len(r.only_a)} only in A, {len(r.only_b)} only in B, {len(r.changed)} changed, "
              f"{r.identical} identical, {len(r.signatures)} signature differences")
    missing = {"a": "missing in A", "b": "missing in B", "both": "missing in both"}.get(r.missing or "", "")
    return f"{name}: {r.status.upper()}" + (f" ({missing})" if missing else "") + f" - {counts}"


def to_text(report: Report) -> str:
    lines = [f"A: {report.a}", f"B: {report.b}", ""]
    for r in report.repos:
        lines.append(_headline(r))
        for message in r.errors:
            lines.append(f"  error: {message}")
        for message in r.partial:
            lines.append(f"  partial: {message}")
        table = [(status, _short_tag(tag), *rest) for status, tag, *rest in rows(r)]
        if table:
            header = ("STATUS", "TAG", "A", "B", "NOTE")
            widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
            for row in (header, *table):
                lines.append("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        lines.append("")
    for message in report.errors:
        lines.append(f"error: {message}")
    c = report.counts()
    status = {0: "IDENTICAL", 1: "DIFFERENCES FOUND", 2: "ERROR"}[report.exit_code]
    lines.append(f"{status}: {c['repositories']} repositories, {c['only_a']} only in A, {c['only_b']} only in B, "
                 f"{c['changed']} changed, {c['identical']} identical, {c['signatures']} signature differences, "
                 f"{c['missing']} missing, {c['errors']} errors, {c['partial']} partial "
                 f"({report.seconds:.2f}s)")
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}code{font:12px ui-monospace,monospace}
.identical{color:#1a7f37}.differs{color:#9a6700}.error,.partial{color:#cf222e}
.s-changed{background:#fff8c5}.s-only{background:#ddf4ff}.s-sig{background:#fbefff}"""


def to_html(report: Report) -> str:
    e = html.escape
    status = {0: "identical", 1: "differs", 2: "error"}[report.exit_code]
    c = report.counts()
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>mirror-diff {e(report.a)} vs {e(report.b)}</title><style>{_CSS}</style></head><body>",
           f"<h1>mirror-diff: <span class=\"{status}\">{status}</span></h1>",
           f"<p>A: <code>{e(report.a)}</code><br>B: <code>{e(report.b)}</code><br>"
           f"{report.seconds:.2f}s</p>", "<table><tr>"]
    out += [f"<th>{e(k.replace('_', ' '))}</th>" for k in c] + ["</tr><tr>"]
    out += [f"<td>{v}</td>" for v in c.values()] + ["</tr></table>"]
    out += [f'<p class="error">error: {e(m)}</p>' for m in report.errors]
    for r in report.repos:
        other = "" if r.repo_a == r.repo_b else f" vs <code>{e(r.repo_b)}</code>"
        out.append(f'<h2><code>{e(r.repo_a)}</code>{other} <span class="{r.status}">{r.status}</span></h2>')
        out.append(f"<p>{e(_headline(r).split(' - ', 1)[1])}</p>")
        out += [f'<p class="error">error: {e(m)}</p>' for m in r.errors]
        out += [f'<p class="partial">partial: {e(m)}</p>' for m in r.partial]
        found = rows(r)
        if found:
            out.append("<table><tr><th>status</th><th>tag</th><th>A</th><th>B</th><th>note</th></tr>")
            for row in found:
                css = "s-sig" if row[0].startswith("signature") else ("s-changed" if row[0] == "changed" else "s-only")
                out.append(f'<tr class="{css}">' + "".join(f"<td>{_cell(i, v)}</td>" for i, v in enumerate(row))
                           + "</tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _cell(i: int, value: Any) -> str:
    text = html.escape(str(value))
    return f"<code>{text}</code>" if i in (1, 2, 3) and value not in ("", "-") else text


RENDERERS = {"text": to_text, "json": to_json, "html": to_html}
