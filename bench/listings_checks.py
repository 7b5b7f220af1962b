"""Untimed correctness checks for ``listings.py`` (not a script).

For one repository populated with ``populate.version_tags(N)`` on both sides, compares what ours answers
with what the generated tag set implies:

- ``sort=semver&order=desc`` walked to the end with ``n=1000`` (following ``Link``): every tag exactly
  once, non-versions before versions, versions never rising, every family strictly falling;
- the timed pages (``semver_top``, ``semver_deep`` with ``last=<middle plain version>``, ``kind=release``,
  the index-shaped ``tags/list``, ``updated_top``) equal the matching slice of the walk;
- ``sort=updated&order=desc`` walked to the end: every tag once, ``updated`` never rising;
- plain ``tags/list`` of both sides: the same tag set, ours in byte order and without ``Link``;
- ``newer`` of ``1.2.3`` with the default n and with n=10000: the plain ``N.N.N`` releases above it,
  newest first, and ``complete`` as documented.
"""
from __future__ import annotations

import re
import time
import urllib.parse

from bench._common import OCI_INDEX, check_loopback, next_link

NEWER_TAG = "1.2.3"
NEWER_DEFAULT_N = 10                  # docs/extensions.md: default n of newer (20 before commit 2af08c4)
PAGE_MAX = 10_000                     # limits.page_max default
MAX_PAGES = 2_000                     # bound on Link-following per walk
VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-rc\.(\d+))?(?:-(alpine|slim))?$")
KEY_RE = re.compile(r"^[^:]+:repo:\{([^}]*)\}:(.*)$")
DIGEST_RE = re.compile(r"(sha256|sha512):[0-9a-f]{64,128}")


def parse(tag: str):
    """(precedence, family) of a generated version tag, or None for a non-version.

    precedence = (major, minor, patch, 1 for a release / 0 for an rc, rc number); family = (shape, variant,
    is_prerelease). ``M.m`` has the precedence of ``M.m.0``."""
    m = VERSION_RE.match(tag)
    if not m:
        return None
    major, minor, patch, rc, variant = m.groups()
    prec = (int(major), int(minor), int(patch or 0), 0 if rc else 1, int(rc or 0))
    return prec, ("N.N.N" if patch is not None else "N.N", variant or "", rc is not None)


def classify_key(key: str) -> tuple[str | None, str]:
    """(repository, key pattern with digests as <dgst>) of a Redis key; (None, key) outside a repository."""
    m = KEY_RE.match(key)
    if not m:
        return None, key
    return m.group(1), DIGEST_RE.sub("<dgst>", m.group(2))


def walk(sess, base: str, path: str, field: str, timeout: float) -> dict:
    """GET ``path`` and every ``Link: rel="next"``; return the items, pages, seconds and statuses."""
    items, statuses, url = [], [], base + path
    t0 = time.perf_counter()
    for _ in range(MAX_PAGES):
        resp = sess.get(url, timeout=timeout)
        statuses.append(resp.status_code)
        if resp.status_code != 200:
            break
        items.extend(resp.json().get(field) or [])
        link = next_link(resp, base)
        if not link:
            break
        check_loopback(link.split("/v2/")[0])
        url = link
    return {"items": items, "pages": len(statuses), "seconds": round(time.perf_counter() - t0, 2),
            "statuses": sorted(set(statuses))}


def _names(sess, url: str, field: str, timeout: float, headers=None) -> tuple[list[str], dict]:
    resp = sess.get(url, headers=headers or {}, timeout=timeout)
    body = resp.json() if resp.status_code == 200 else {}
    items = body.get(field) or []
    if field == "manifests":
        names = [d.get("annotations", {}).get("org.opencontainers.image.ref.name") for d in items]
    else:
        names = [d["name"] if isinstance(d, dict) else d for d in items]
    return names, {"status": resp.status_code, "link": resp.headers.get("Link"), "body": body}


def _same(what: str, got: list, expected: list, problems: list) -> bool:
    if got == expected:
        return True
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    problems.append(f"{what}: {len(got)} items, expected {len(expected)}; first difference at {first}:"
                    f" got {got[first:first + 3]} expected {expected[first:first + 3]}")
    return False


def _set_check(what: str, names: list[str], tagset: set, problems: list) -> None:
    if len(names) != len(set(names)):
        problems.append(f"{what}: {len(names) - len(set(names))} duplicates")
    if set(names) != tagset:
        problems.append(f"{what}: missing {len(tagset - set(names))} (e.g. {sorted(tagset - set(names))[:3]}),"
                        f" extra {len(set(names) - tagset)} (e.g. {sorted(set(names) - tagset)[:3]})")


def _semver_order_problems(names: list[str]) -> list[str]:
    out = []
    parsed = [parse(n) for n in names]
    versions = [i for i, p in enumerate(parsed) if p]
    nonversions = [i for i, p in enumerate(parsed) if not p]
    if versions and nonversions and max(nonversions) > min(versions):
        out.append(f"semver desc: non-version {names[max(nonversions)]} after version {names[min(versions)]}")
    prev, fam_last, rising, fam_bad = None, {}, [], []
    for name, p in zip(names, parsed):
        if p is None:
            continue
        if prev and p[0] > prev[1][0]:
            rising.append(f"{prev[0]} before {name}")
        if p[1] in fam_last and not p[0] < fam_last[p[1]][1][0]:
            fam_bad.append(f"{fam_last[p[1]][0]} before {name}")
        prev = fam_last[p[1]] = (name, p)
    if rising:
        out.append(f"semver desc: precedence rises {len(rising)} times, e.g. {rising[:3]}")
    if fam_bad:
        out.append(f"semver desc: a family does not strictly fall {len(fam_bad)} times, e.g. {fam_bad[:3]}")
    return out


def check_repo(sess, ours, peer, repo: str, tags: list[str], timeout: float,
               newer_default: int = NEWER_DEFAULT_N) -> dict:
    res: dict = {"repo": repo, "tags": len(tags), "problems": []}
    problems = res["problems"]
    tagset = set(tags)
    ext = f"{ours.url}/v2/{repo}/_regext/tags"

    w = walk(sess, ours.url, f"/v2/{repo}/_regext/tags?sort=semver&order=desc&n=1000", "tags", timeout)
    names = [t["name"] for t in w["items"]]
    res["semver_walk"] = {k: v for k, v in w.items() if k != "items"}
    _set_check("semver walk", names, tagset, problems)
    problems.extend(_semver_order_problems(names))

    got, _ = _names(sess, f"{ext}?sort=semver&order=desc&n=100", "tags", timeout)
    _same("semver_top", got, names[:100], problems)
    plain = [i for i, n in enumerate(names) if (parse(n) or (None, None))[1] == ("N.N.N", "", False)]
    pos = min(plain, key=lambda i: abs(i - len(names) // 2)) if plain else len(names) // 2
    res["mid"], res["mid_position"] = names[pos], pos
    got, _ = _names(sess, f"{ext}?sort=semver&order=desc&n=100&last={urllib.parse.quote(names[pos])}",
                    "tags", timeout)
    _same("semver_deep", got, names[pos + 1:pos + 101], problems)
    releases = [n for n in names if parse(n) and not parse(n)[1][2]]
    got, _ = _names(sess, f"{ext}?sort=semver&order=desc&kind=release&n=100", "tags", timeout)
    _same("semver_release", got, releases[:100], problems)
    got, info = _names(sess, f"{ours.url}/v2/{repo}/tags/list?sort_by=semver&sort_order=desc&n=100",
                       "manifests", timeout, {"Accept": OCI_INDEX})
    _same("index_semver", got, names[:100], problems)
    res["semver_top_nonversions"] = sum(1 for n in names[:100] if not parse(n))

    w = walk(sess, ours.url, f"/v2/{repo}/_regext/tags?sort=updated&order=desc&n=1000", "tags", timeout)
    upd = [t["name"] for t in w["items"]]
    res["updated_walk"] = {k: v for k, v in w.items() if k != "items"}
    _set_check("updated walk", upd, tagset, problems)
    times = [t["updated"] for t in w["items"]]
    rises = sum(1 for a, b in zip(times, times[1:]) if b > a)
    if rises:
        problems.append(f"updated desc: 'updated' rises {rises} times")
    got, _ = _names(sess, f"{ext}?sort=updated&order=desc&n=100", "tags", timeout)
    _same("updated_top", got, upd[:100], problems)

    for side in (ours, peer):
        resp = sess.get(f"{side.url}/v2/{repo}/tags/list", timeout=timeout)
        plain_tags = resp.json().get("tags") or [] if resp.status_code == 200 else []
        res[f"plain_{side.kind}"] = {"status": resp.status_code, "tags": len(plain_tags), "bytes": len(resp.content),
                                     "link": resp.headers.get("Link"), "lexical": plain_tags == sorted(plain_tags)}
        _set_check(f"plain tags/list ({side.kind})", plain_tags, tagset, problems)
        if side is ours and (plain_tags != sorted(plain_tags) or resp.headers.get("Link")):
            problems.append("ours plain tags/list: not in byte order, or paged without n")

    me = parse(NEWER_TAG)
    family = sorted((t for t in tags if parse(t) and parse(t)[1] == me[1] and parse(t)[0] > me[0]),
                    key=lambda t: parse(t)[0], reverse=True)
    res["newer_family_count"] = len(family)
    for n in (None, PAGE_MAX):
        q = f"?n={n}" if n else ""
        got, info = _names(sess, f"{ours.url}/v2/{repo}/_regext/tags/{NEWER_TAG}/newer{q}", "newer", timeout)
        limit = n or newer_default
        _same(f"newer n={n or 'default'}", got, family[:limit], problems)
        complete = info["body"].get("complete")
        res[f"newer_{n or 'default'}"] = {"count": len(got), "complete": complete, "status": info["status"]}
        if len(family) <= limit and complete is not True:
            problems.append(f"newer n={n or 'default'}: complete={complete} with every newer tag listed")
        if len(family) > limit and complete is not False:
            problems.append(f"newer n={n or 'default'}: complete={complete} with {len(family)} newer tags")
    return res
