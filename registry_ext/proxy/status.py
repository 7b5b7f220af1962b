"""The upstream client's hook that records how each upstream answers (index/upstream_status.py).

``UpstreamClient`` tells ``observe`` the outcome of every call (None: it answered). An answer,
including a 404 (the upstream is there and said so), refreshes "last answer"; an unavailable
(down, 5xx, 429, too slow) or refused (401/403, an answer we would not store) call is the "last
error". Its reason is shown in the web UI, so it is made safe first (``safe_reason``): URLs lose
user info, query and fragment (a CDN redirect's signature lives there), the upstream's configured
user name and password are masked, and so are ``Bearer``/``Basic`` values; control characters go
and the text is cut to ``REASON_MAX``.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Protocol
from urllib.parse import urlsplit

from registry_ext.clock import now_ms
from registry_ext.index.upstream_status import UpstreamStatus
from registry_ext.proxy.config import Upstream
from registry_ext.proxy.source import UpstreamError, UpstreamNotFound, UpstreamUnavailable

REASON_MAX = 300
MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")
_AUTH = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SHORTEST_MASKED = 3  # a shorter secret would mask ordinary letters of the text


class Observed(Protocol):
    config: Upstream
    observe: Callable[[UpstreamError | None], None]


def observe_upstreams(clients: Iterable[Observed], status: UpstreamStatus) -> None:
    """Have each upstream client record its outcomes in ``status``."""
    for client in clients:
        client.observe = StatusHook(status, client.config)


class StatusHook:
    """Records one upstream's outcomes; never raises (index/upstream_status.py logs Redis errors)."""

    def __init__(self, status: UpstreamStatus, upstream: Upstream, clock: Callable[[], int] = now_ms):
        self.status = status
        self.upstream = upstream
        self.clock = clock

    def __call__(self, exc: UpstreamError | None) -> None:
        if exc is None or isinstance(exc, UpstreamNotFound):
            self.status.answered(self.upstream.name, self.clock())
            return
        kind = "unavailable" if isinstance(exc, UpstreamUnavailable) else "refused"
        self.status.failed(self.upstream.name, self.clock(), safe_reason(exc.reason, self.upstream), exc.status,
                           kind)


def safe_reason(reason: str, upstream: Upstream) -> str:
    """``reason`` without credentials, tokens or URL parts that may carry them, at most REASON_MAX."""
    text = _AUTH.sub(lambda m: f"{m.group(1)} {MASK}", _URL.sub(_bare_url, reason))
    for secret in (upstream.password, upstream.username):
        if len(secret) >= _SHORTEST_MASKED:
            text = text.replace(secret, MASK)
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= REASON_MAX else text[:REASON_MAX - 1] + "…"


def _bare_url(match: re.Match) -> str:
    try:
        parts = urlsplit(match.group(0))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<url>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"
