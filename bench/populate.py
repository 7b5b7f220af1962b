"""Populate an OCI registry with N distinct, tagged manifests over plain HTTP (OCI distribution API).

Pushes one small config blob and one small layer blob (POST + PUT monolithic upload, skipped
if HEAD says the blob already exists), then N OCI image manifests with a thread pool and
keep-alive sessions. Every manifest references the same two blobs but is distinct: it carries
its tag name and index as annotations, so every tag has its own digest. Manifest bytes are
deterministic (sorted keys, compact JSON), so two registries populated with the same options
hold byte-identical manifests with the same digests.

Tag names (default generator): ``1.<i//100>.<i%100>``, every fourth one with an ``-alpine``
suffix (``1.0.3-alpine``), i = 0..N-1. With ``--versions``, a release history in version order
(``version_tags``: ``M.m.p`` with ``-alpine``/``-slim`` variants, ``-rc.N`` pre-releases, ``M.m`` and
commit-hash tags, ``latest``/``stable``/``edge``/``nightly`` last). With ``--from-history``, the first N
distinct tag names (in order of first appearance) from
/work/shared/data/official-images-tag-history.jsonl.gz, optionally restricted to one image with ``--image``.

Example::

    python -m bench.populate --url http://127.0.0.1:5001 --repo bench/app --tags 1000 --concurrency 8
"""
from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import hashlib
import json
import sys
import time

from bench._common import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, SessionPool, check_loopback
HISTORY = "/work/shared/data/official-images-tag-history.jsonl.gz"
MAX_TAGS = 200_000


def generated_tags(n: int) -> list[str]:
    """``1.<i//100>.<i%100>``, every fourth one with ``-alpine``; all distinct."""
    return [f"1.{i // 100}.{i % 100}" + ("-alpine" if i % 4 == 3 else "") for i in range(n)]


VERSION_FIXED = ("latest", "stable", "edge", "nightly")


def version_tags(n: int) -> list[str]:
    """A release history of ``n`` distinct tags in push (= version) order, like a busy image's.

    For each ``M.m.p`` (majors from 1, minors 0..99, patches 0..99): ``M.m.0-rc.1`` and ``M.m.0-rc.2``
    before ``M.m.0``; the plain ``M.m.p``; ``M.m.p-alpine`` when p % 4 == 0; ``M.m.p-slim`` when
    p % 10 == 5; the floating ``M.m`` after ``M.m.0``; a 7-hex commit tag after every 1000th version;
    and ``latest``, ``stable``, ``edge``, ``nightly`` at the end. About 138 tags per 100 versions, so
    N=1000 reaches 1.7.x, N=10,000 1.72.x, N=100,000 8.24.x; ``1.2.3`` sits near the bottom.
    """
    fixed = list(VERSION_FIXED[:max(0, min(len(VERSION_FIXED), n - 1))]) if n > 1 else []
    budget = n - len(fixed)
    out: list[str] = []
    count = 0
    for major in range(1, 1 + MAX_TAGS // 100):          # bounded: never more than MAX_TAGS versions
        for minor in range(100):
            for patch in range(100):
                v = f"{major}.{minor}.{patch}"
                batch = [f"{v}-rc.1", f"{v}-rc.2"] if patch == 0 else []
                batch.append(v)
                if patch == 0:
                    batch.append(f"{major}.{minor}")
                if patch % 4 == 0:
                    batch.append(f"{v}-alpine")
                if patch % 10 == 5:
                    batch.append(f"{v}-slim")
                count += 1
                if count % 1000 == 0:
                    h = hashlib.sha1(v.encode()).hexdigest()[:7]
                    batch.append(h if not h.isdigit() else "a" + h[1:])
                for tag in batch:
                    if len(out) >= budget:
                        return out + fixed
                    out.append(tag)
    return out + fixed


def history_tags(n: int, image: str | None = None, path: str = HISTORY) -> list[str]:
    """The first ``n`` distinct tag names of the official-images history (optionally of one image)."""
    seen: dict[str, None] = {}
    with gzip.open(path, "rt") as fh:
        for line in fh:                       # bounded by the file (~195k lines)
            rec = json.loads(line)
            if image and rec.get("image") != image:
                continue
            tag = rec.get("tag")
            if tag and tag not in seen:
                seen[tag] = None
                if len(seen) >= n:
                    break
    tags = list(seen)
    if len(tags) < n:
        raise SystemExit(f"history has only {len(tags)} distinct tags"
                         f"{' for image ' + image if image else ''}, {n} requested")
    return tags


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def base_blobs() -> tuple[bytes, bytes]:
    """A tiny but valid OCI image config and a tiny gzip'd (empty) tar layer, both deterministic."""
    config = canonical({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(b"\0" * 1024).hexdigest()]},
    })
    # gzip of a 1 KiB zero block (an empty tar archive), with mtime 0 so it is reproducible
    layer = gzip.compress(b"\0" * 1024, mtime=0)
    return config, layer


def manifest_for(tag: str, index: int, config: bytes, layer: bytes) -> bytes:
    return canonical({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        "annotations": {
            "org.opencontainers.image.version": tag,
            "org.opencontainers.image.ref.name": tag,
            "bench.index": str(index),
        },
    })


def push_blob(sess, base: str, repo: str, data: bytes, timeout: float) -> str:
    digest = sha256(data)
    head = sess.head(f"{base}/v2/{repo}/blobs/{digest}", timeout=timeout)
    if head.status_code == 200:
        return digest
    resp = sess.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=timeout)
    if resp.status_code != 202 or "Location" not in resp.headers:
        raise RuntimeError(f"POST blobs/uploads: HTTP {resp.status_code} {resp.text[:300]!r}")
    location = resp.headers["Location"]
    if location.startswith("/"):
        location = base + location
    check_loopback(location.split("/v2/")[0])
    sep = "&" if "?" in location else "?"
    resp = sess.put(f"{location}{sep}digest={digest}", data=data, timeout=timeout,
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
    if resp.status_code != 201:
        raise RuntimeError(f"PUT blob upload: HTTP {resp.status_code} {resp.text[:300]!r}")
    return digest


def populate(url: str, repo: str, tags: list[str], concurrency: int = 8, timeout: float = 60.0,
             quiet: bool = False, max_seconds: float = 3600.0) -> dict:
    """Push the blobs and one manifest per tag; return a summary dict (rate, errors, digests)."""
    base = check_loopback(url)
    if len(tags) > MAX_TAGS:
        raise SystemExit(f"at most {MAX_TAGS} tags")
    config, layer = base_blobs()
    pool = SessionPool(pool_size=2)
    t0 = time.perf_counter()
    push_blob(pool.get(), base, repo, config, timeout)
    push_blob(pool.get(), base, repo, layer, timeout)
    t_blobs = time.perf_counter() - t0

    deadline = time.monotonic() + max_seconds
    errors: list[str] = []
    digests: dict[str, str] = {}
    mismatched: list[str] = []

    def push_one(item):
        index, tag = item
        if time.monotonic() > deadline:
            return tag, None, "skipped: --max-seconds exceeded"
        body = manifest_for(tag, index, config, layer)
        sess = pool.get()
        try:
            resp = sess.put(f"{base}/v2/{repo}/manifests/{tag}", data=body, timeout=timeout,
                            headers={"Content-Type": OCI_MANIFEST})
        except Exception as exc:  # noqa: BLE001 - report, don't die
            return tag, None, f"{type(exc).__name__}: {exc}"
        if resp.status_code != 201:
            return tag, None, f"HTTP {resp.status_code} {resp.text[:200]!r}"
        expected = sha256(body)
        got = resp.headers.get("Docker-Content-Digest")
        return tag, (expected, got), None

    t1 = time.perf_counter()
    done = 0
    report_every = max(1, len(tags) // 10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as ex:
        for tag, dig, err in ex.map(push_one, enumerate(tags)):
            done += 1
            if err:
                errors.append(f"{tag}: {err}")
            else:
                expected, got = dig
                digests[tag] = expected
                if got is not None and got != expected:
                    mismatched.append(f"{tag}: expected {expected} got {got}")
            if not quiet and done % report_every == 0:
                el = time.perf_counter() - t1
                print(f"  {done}/{len(tags)} manifests, {done / el:.0f}/s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t1
    pool.close()
    ok = len(digests)
    summary = {
        "url": base, "repo": repo, "tags": len(tags), "pushed": ok, "errors": len(errors),
        "error_samples": errors[:10], "digest_mismatches": len(mismatched),
        "digest_mismatch_samples": mismatched[:5], "concurrency": concurrency,
        "blob_seconds": round(t_blobs, 4), "manifest_seconds": round(elapsed, 4),
        "manifests_per_second": round(ok / elapsed, 1) if elapsed > 0 else None,
    }
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="registry base URL, loopback only (http://127.0.0.1:PORT)")
    ap.add_argument("--repo", default="bench/app", help="repository name (default bench/app)")
    ap.add_argument("--tags", type=int, default=1000, help="number of tags/manifests (default 1000)")
    ap.add_argument("--concurrency", type=int, default=8, help="pusher threads (default 8)")
    ap.add_argument("--versions", action="store_true",
                    help="release-history tag names (version_tags: M.m.p, -alpine/-slim, -rc.N, latest ...)")
    ap.add_argument("--from-history", action="store_true",
                    help=f"take tag names from {HISTORY} instead of the 1.x.y generator")
    ap.add_argument("--image", default=None, help="with --from-history: only this image's tags (e.g. php, node)")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds (default 60)")
    ap.add_argument("--max-seconds", type=float, default=3600.0,
                    help="stop pushing after this many seconds (default 3600)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)

    tags = (history_tags(args.tags, args.image) if args.from_history
            else version_tags(args.tags) if args.versions else generated_tags(args.tags))
    summary = populate(args.url, args.repo, tags, args.concurrency, args.timeout, max_seconds=args.max_seconds)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['pushed']}/{summary['tags']} manifests pushed to {summary['url']}/{args.repo} in"
              f" {summary['manifest_seconds']:.2f}s: {summary['manifests_per_second']} manifests/s"
              f" (concurrency {args.concurrency}; blobs {summary['blob_seconds']:.3f}s)")
        if summary["errors"]:
            print(f"{summary['errors']} errors, e.g.:", *summary["error_samples"], sep="\n  ")
        if summary["digest_mismatches"]:
            print(f"{summary['digest_mismatches']} Docker-Content-Digest mismatches, e.g.:",
                  *summary["digest_mismatch_samples"], sep="\n  ")
    return 1 if summary["errors"] or summary["digest_mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
