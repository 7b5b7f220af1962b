"""Which tags of an upstream may be mirrored (``tags`` RE2 regexes, ``versions`` ranges), and its
request rate (a token bucket). Pure apart from the clock; config.py and the proxy use it.

A tag is allowed when it matches one of ``tags`` (whole tag, RE2: linear time) *and* lies in one of
``versions`` (oci/version_ranges.py syntax, e.g. ``">=1.20, <2"``); an empty list does not restrict.
This is zot's sync content rule (regex and semver both must hold). Digests are not tags: pulls by
digest are always allowed (an index's children and referrers are only ever named by digest).
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any, Callable

from registry_ext.oci.tag_filter import PATTERN_MAX, compile_re2
from registry_ext.oci.version_ranges import VersionRange, parse_range

MAX_RULES = 64
RATE_WAIT_CAP = 2.0  # seconds a request waits for a token before it fails (Retry-After: the wait needed)


class RuleError(ValueError):
    """A rule that cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class TagRules:
    patterns: tuple[Any, ...] = ()
    ranges: tuple[VersionRange, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.patterns or self.ranges)

    def allows(self, tag: str) -> bool:
        """Whether ``tag`` may be mirrored."""
        if self.patterns and not any(p.fullmatch(tag) for p in self.patterns):
            return False
        return not self.ranges or any(r.contains(tag) for r in self.ranges)


def compile_rules(tags: list, versions: list) -> TagRules:
    """TagRules from the ``tags`` and ``versions`` lists. Raises: RuleError."""
    for key, values in (("tags", tags), ("versions", versions)):
        if len(values) > MAX_RULES or not all(isinstance(v, str) and 0 < len(v) <= PATTERN_MAX for v in values):
            raise RuleError(f"{key}: at most {MAX_RULES} non-empty strings of at most {PATTERN_MAX} characters")
    patterns, ranges = [], []
    for pattern in tags:
        try:
            patterns.append(compile_re2(pattern))
        except ValueError as exc:
            raise RuleError(f"tags: {pattern[:80]!r} is invalid or unsupported by RE2: {exc}") from None
    for text in versions:
        try:
            ranges.append(parse_range(text))
        except ValueError as exc:
            raise RuleError(f"versions: {text[:80]!r}: {exc}") from None
    return TagRules(tuple(patterns), tuple(ranges))


class TokenBucket:
    """``rate`` requests per second, bursts of ``max(1, rate)``; shared by one worker's threads."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.lock = threading.Lock()

    def take(self, max_wait: float = RATE_WAIT_CAP) -> float:
        """Take a token, waiting up to ``max_wait`` seconds for it; 0.0 when taken, else the seconds
        until one would be free (nothing taken: the caller fails with that as Retry-After)."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            wait = (1.0 - self.tokens) / self.rate if self.tokens < 1.0 else 0.0
            if wait > max_wait:
                return max(wait, 1e-3)
            self.tokens -= 1.0  # reserved now; a waiter sleeps its share outside the lock
        if wait > 0:
            self.sleep(wait)
        return 0.0


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header."""
    return max(1, math.ceil(wait))
