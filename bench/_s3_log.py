"""The S3 requests behind each step of ``bench/s3.py``, read from RGW's access lines (not a script).

radosgw's beast frontend logs one line a request at debug level 1 (``DIR/log/client.rgw.s3.log``)::

    ... beast: 0x..: 127.0.0.1 - s3test [06/Dec/2026:05:01:43.275 +0000] "GET /bucket?list-type=2&... HTTP/1.1"
    200 331 - "Boto3/1.44.18 ..." - latency=0.004000000s

A step is a (bucket, start, end) window of wall-clock time; a request belongs to it when it names that
bucket and began inside the window (or up to ``SLACK`` before it: RGW's clock is coarse). Each side has its
own bucket, so the sides never mix; ours' background work (each worker's maintenance tick lists
``journal/``) is counted where it falls.
"""
from __future__ import annotations

import collections
import datetime
import re
from urllib.parse import parse_qsl, unquote, urlsplit

LINE = re.compile(r'\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d+) [+-]\d{4}\] "(\w+) (\S+) HTTP/[\d.]+" (\d{3}) '
                  r'.*latency=([\d.]+)s')
HEXISH = re.compile(r"[0-9a-f]{12,}|[0-9A-Za-z_~.-]{20,}")
TAG = re.compile(r"\d+\.\d+\.\d+(?:-alpine)?")
NUMBERED = re.compile(r"(?<=/)([a-z0-9]*[a-z])\d+(?=/_)")  # a repository named <word><n>: s3push3, hread0, spread7
SLACK = 0.010  # seconds: radosgw stamps a request up to ~5 ms early (a coarse clock: latencies come in 4 ms steps)
LIST_ARGS = ("list-type", "prefix", "delimiter", "encoding-type", "max-keys", "marker", "continuation-token")


def kind(method: str, target: str) -> str:
    """``METHOD key-shape?query-names``: digests and ids as ``*``, tags as ``<tag>``, numbered
    repositories as ``<word>N``; a listing as ``LIST <prefix shape>``."""
    parts = urlsplit(target)
    key = unquote(parts.path).split("/", 2)[2] if parts.path.count("/") > 1 else ""
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "prefix" in query or "list-type" in query or "max-keys" in query:
        key, method = query.get("prefix", ""), "LIST"
    shape = TAG.sub("<tag>", HEXISH.sub("*", key))
    shape = re.sub(r"/[0-9a-f]{2}/", "/xx/", NUMBERED.sub(r"\1N", shape))
    names = sorted(k for k in query if k not in LIST_ARGS and not k.startswith("X-Amz-"))
    return f"{method} {shape}" + (f"?{'&'.join(names)}" if names else "")


def parse(path: str):
    """Yield (unix time, method, target, status, latency s) of every access line in the log."""
    with open(path, errors="replace") as fh:
        for line in fh:
            if "beast:" not in line:
                continue
            m = LINE.search(line)
            if not m:
                continue
            ts = datetime.datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S.%f")
            yield (ts.replace(tzinfo=datetime.timezone.utc).timestamp(), m.group(2), m.group(3),
                   int(m.group(4)), float(m.group(5)))


def nearest(steps, ts: float) -> dict | None:
    """The step whose window holds ``ts``, else one starting at most ``SLACK`` after it (RGW's clock is
    coarse and stamps a request a few ms early; never late, so nothing is stretched past a step's end)."""
    for step in steps:
        if step["t0"] <= ts <= step["t1"]:
            return step
    for step in steps:
        if 0 < step["t0"] - ts <= SLACK:
            return step
    return None


def attribute(log_path: str, steps: list[dict]) -> None:
    """Add ``s3_requests``, ``s3_latency_s`` and ``s3_kinds`` (the 16 commonest: kind, count, latency s) to each
    step dict in place; a step carries ``bucket``, ``t0``, ``t1`` (unix seconds)."""
    by_bucket = collections.defaultdict(list)
    for step in steps:
        by_bucket[step["bucket"]].append(step)
        step["_kinds"], step["_lat"] = collections.Counter(), collections.Counter()
        step["s3_requests"], step["s3_latency_s"] = 0, 0.0
    for ts, method, target, _status, latency in parse(log_path):
        bucket = urlsplit(target).path.split("/")[1] if target.startswith("/") else ""
        step = nearest(by_bucket.get(bucket, ()), ts)
        if step is not None:
            step["s3_requests"] += 1
            step["s3_latency_s"] += latency
            step["_kinds"][kind(method, target)] += 1
            step["_lat"][kind(method, target)] += latency
    for step in steps:
        lat = step.pop("_lat")
        step["s3_kinds"] = [(k, n, round(lat[k], 4)) for k, n in step.pop("_kinds").most_common(16)]
