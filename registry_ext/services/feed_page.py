"""The bytes of a feed answer, shared by the workers and the waiter process (pure).

Events are stored as the JSON they are sent as (oci/feed_events.py), so a
page is those strings joined, never parsed and serialised again. The
ETag hashes the body and the ``Link`` header, as the listings' ETags do
(api/http.py ``conditional``), so a repeated poll that finds nothing new
answers ``304`` whichever process answers it.
"""
from __future__ import annotations

import hashlib
from typing import Iterable
from urllib.parse import urlencode

import orjson

PATH = "/v2/_regext/updates"
# Query parameters a Link keeps; `cursor` is replaced, `recent` only applies without a cursor.
LINK_PARAMS = ("repository", "prefix", "glob", "watch", "n", "wait")


def body(events: Iterable[str], next_cursor: str, more: bool, watch: str | None = None) -> bytes:
    """``{"events":[...],"next":"<cursor>","more":false[,"watch":"<id>"]}``."""
    tail = {"next": next_cursor, "more": more}
    if watch is not None:
        tail["watch"] = watch
    return b'{"events":[' + ",".join(events).encode() + b"]," + orjson.dumps(tail)[1:]


def link(args: Iterable[tuple[str, str]], next_cursor: str) -> str:
    """The ``Link`` to the next poll: the request's filter parameters and the new cursor."""
    kept = sorted(((k, v) for k, v in args if k in LINK_PARAMS), key=lambda kv: LINK_PARAMS.index(kv[0]))
    kept.append(("cursor", next_cursor))
    return f'<{PATH}?{urlencode(kept)}>; rel="next"'


def etag(data: bytes, link_header: str) -> str:
    return hashlib.sha256(data + link_header.encode()).hexdigest()[:32]


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header value names ``tag`` (strong or weak, or ``*``)."""
    if not if_none_match:
        return False
    for item in if_none_match.split(","):
        item = item.strip()
        if item == "*" or item.removeprefix("W/").strip('"') == tag:
            return True
    return False
