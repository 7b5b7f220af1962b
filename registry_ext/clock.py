"""The registry's one notion of time: integer milliseconds since the epoch."""
from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int) -> str:
    """``ms`` as RFC 3339 in UTC with milliseconds, e.g. ``2026-07-23T12:34:56.789Z``."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
