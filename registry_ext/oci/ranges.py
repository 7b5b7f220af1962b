"""Parsing of the byte ranges clients send (pure).

Upload chunks carry ``Content-Range: <start>-<end>`` (distribution-spec
"Pushing a blob in chunks"; inclusive, no unit). Some clients add a
``bytes`` unit or a ``/total``; both are accepted. Blob downloads take a
single RFC 9110 ``Range: bytes=<first>-<last>`` (or ``-<suffix>``).
"""
from __future__ import annotations

import re

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?\s*(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?$")
_RANGE = re.compile(r"^bytes=\s*(\d{0,19})-(\d{0,19})\s*$")


class RangeError(ValueError):
    """A range header that cannot be honoured."""


def parse_content_range(value: str) -> tuple[int, int]:
    """``Content-Range`` of an upload chunk → (start, length)."""
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        raise RangeError(f"malformed Content-Range {value[:100]!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RangeError(f"Content-Range end before start: {value[:100]!r}")
    return start, end - start + 1


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """``Range`` of a download → (first, last) inclusive, or None for the whole body.

    Multi-range requests are answered with the whole body (allowed by RFC
    9110: a server may ignore Range). Raises RangeError when unsatisfiable.
    """
    if not value or "," in value:
        return None
    match = _RANGE.match(value.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeError("unsatisfiable suffix range")
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeError("range not satisfiable")
    return start, end
