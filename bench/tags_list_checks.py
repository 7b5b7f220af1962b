"""The untimed correctness pass of ``tags_list.py`` (not a script): on both sides the tag set, lexical order,
what ``n=100`` returns, a paginated walk with ``n=100``, ``n=10&last=<median>``, and byte-identical manifests
with matching ``Docker-Content-Digest`` (GET and HEAD) for a sample of tags.
"""
from __future__ import annotations

import hashlib
import random

from bench._common import MANIFEST_ACCEPT, SessionPool, check_loopback, next_link
from bench.tags_list_ops import MAX_PAGES, Side
def list_all(sess, base: str, repo: str, n: int | None = None, timeout: float = 120.0):
    """Walk tags/list (optionally with n) following Link rel=next. Returns (tags, pages, bytes, statuses)."""
    url = f"{base}/v2/{repo}/tags/list" + (f"?n={n}" if n else "")
    tags: list[str] = []
    pages = 0
    nbytes = 0
    statuses = []
    for _ in range(MAX_PAGES):
        resp = sess.get(url, timeout=timeout)
        pages += 1
        nbytes += len(resp.content)
        statuses.append(resp.status_code)
        if resp.status_code != 200:
            break
        tags.extend(resp.json().get("tags") or [])
        link = next_link(resp, base)
        if not link:
            break
        check_loopback(link.split("/v2/")[0])
        url = link
    return tags, pages, nbytes, statuses



def is_lexical(tags: list[str]) -> bool:
    return tags == sorted(tags)


def check_side(sess, side: Side, repo: str, timeout: float) -> dict:
    info: dict = {}
    tags, pages, nbytes, statuses = list_all(sess, side.url, repo, timeout=timeout)
    info["full_list"] = {"tags": len(tags), "distinct": len(set(tags)), "pages": pages, "bytes": nbytes,
                         "statuses": sorted(set(statuses)), "lexical_order": is_lexical(tags),
                         "first": tags[:5]}
    r = sess.get(f"{side.url}/v2/{repo}/tags/list?n=100", timeout=timeout)
    body = r.json() if r.status_code == 200 else {}
    info["n100"] = {"status": r.status_code, "tags_returned": len(body.get("tags") or []),
                    "link": r.headers.get("Link"), "bytes": len(r.content),
                    "honours_n": len(body.get("tags") or []) <= 100,
                    "first": (body.get("tags") or [])[:5]}
    walk, wpages, _, wstat = list_all(sess, side.url, repo, n=100, timeout=timeout)
    info["n100_walk"] = {"tags": len(walk), "distinct": len(set(walk)), "pages": wpages,
                         "statuses": sorted(set(wstat)), "complete": set(walk) == set(tags),
                         "duplicates": len(walk) - len(set(walk)), "lexical_order": is_lexical(walk)}
    if tags:
        last = sorted(tags)[len(tags) // 2]
        r = sess.get(f"{side.url}/v2/{repo}/tags/list", params={"n": 10, "last": last}, timeout=timeout)
        got = (r.json().get("tags") or []) if r.status_code == 200 else []
        expected = [t for t in sorted(tags) if t > last][:10]
        info["n10_last"] = {"last": last, "status": r.status_code, "tags_returned": len(got),
                            "first": got[:3], "matches_lexical_after_last": got == expected}
    info["_tags"] = tags
    return info


def check_manifests(pool_o, pool_p, ours: Side, peer: Side, repo: str, sample: list[str], timeout: float) -> dict:
    res = {"sampled": len(sample), "digest_mismatch": [], "body_mismatch": [], "head_mismatch": [],
           "bad_status": [], "content_types": {}}
    so, sp = pool_o.get(), pool_p.get()
    for tag in sample:
        rows = {}
        for side, sess in ((ours, so), (peer, sp)):
            g = sess.get(f"{side.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                         timeout=timeout)
            h = sess.head(f"{side.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                          timeout=timeout)
            if g.status_code != 200 or h.status_code != 200:
                res["bad_status"].append(f"{side.name} {tag}: GET {g.status_code} HEAD {h.status_code}")
                continue
            body_digest = "sha256:" + hashlib.sha256(g.content).hexdigest()
            hdr = g.headers.get("Docker-Content-Digest")
            res["content_types"].setdefault(side.name, set()).add(g.headers.get("Content-Type"))
            if hdr != body_digest:
                res["digest_mismatch"].append(f"{side.name} {tag}: header {hdr} body {body_digest}")
            if (h.headers.get("Docker-Content-Digest") != hdr
                    or h.headers.get("Content-Length") != str(len(g.content))):
                res["head_mismatch"].append(
                    f"{side.name} {tag}: HEAD digest {h.headers.get('Docker-Content-Digest')} "
                    f"len {h.headers.get('Content-Length')} vs GET {hdr} len {len(g.content)}")
            rows[side.name] = body_digest
        if len(rows) == 2 and rows[ours.name] != rows[peer.name]:
            res["body_mismatch"].append(f"{tag}: ours {rows[ours.name]} peer {rows[peer.name]}")
    res["content_types"] = {k: sorted(str(x) for x in v) for k, v in res["content_types"].items()}
    return res


def run_checks(ours: Side, peer: Side, repo: str, seed: int, sample: int, timeout: float) -> tuple[dict, list[str]]:
    """Both sides checked and compared; returns the checks and the sorted tags both sides hold."""
    pool_o, pool_p = SessionPool(), SessionPool()
    checks = {"ours": check_side(pool_o.get(), ours, repo, timeout),
              "peer": check_side(pool_p.get(), peer, repo, timeout)}
    to, tp = checks["ours"].pop("_tags"), checks["peer"].pop("_tags")
    common = sorted(set(to) & set(tp))
    checks["tag_sets_equal"] = set(to) == set(tp)
    checks["only_ours_count"] = len(set(to) - set(tp))
    checks["only_peer_count"] = len(set(tp) - set(to))
    checks["only_ours_sample"] = sorted(set(to) - set(tp))[:5]
    checks["only_peer_sample"] = sorted(set(tp) - set(to))[:5]
    if not common:
        raise SystemExit(f"no common tags in {repo} (ours {len(to)}, peer {len(tp)}); populate both first")
    srng = random.Random(seed)
    checks["manifests"] = check_manifests(pool_o, pool_p, ours, peer, repo,
                                          srng.sample(common, min(sample, len(common))), timeout)
    pool_o.close()
    pool_p.close()
    return checks, common
