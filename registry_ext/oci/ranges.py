"""Parsing of the byte ranges clients send (pure).

Upload chunks carry ``Content-Range: <start>-<end>`` (distribution-spec
"Pushing a blob in chunks"; inclusive, no unit). Some clients add a
``bytes`` unit or a ``/total``; both are accepted. Blob downloads take an
RFC 9110 ``Range``, read exactly as nginx reads it (below): behind nginx a
blob GET is sent by nginx (X-Accel-Redirect), which applies the client's
``Range`` itself, while the app answers HEAD and every refusal; both must
give the same answer to the same header.
"""
from __future__ import annotations

import re

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?\s*(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?$")


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

    The rules of nginx's ``ngx_http_range_parse`` with ``max_ranges 1``
    (deploy/nginx.conf), so a HEAD (the app) and a GET (nginx) agree:

    - no ``bytes=`` prefix (any case), or nothing after it: the whole body
      (RFC 9110: an unknown unit is ignored);
    - ranges separated by ``,``, each ``first-last``, ``first-`` or
      ``-suffix``, ASCII digits and spaces only; anything else, a number
      over 2^63-1, or no satisfiable range at all: RangeError (416);
    - a range starting at 0 that selects nothing (an empty blob), or more
      than one satisfiable range: the whole body;
    - a range starting past the end is skipped; ``last`` past the end is
      clipped.

    Raises RangeError when unsatisfiable.
    """
    if value is None or len(value) < 7 or value[:6].lower() != "bytes=":
        return None
    chosen: tuple[int, int] | None = None
    pos = 6
    while True:
        start, end, pos = _one_range(value, pos, size)
        if start < end:
            if chosen is not None:
                return None  # a second range: max_ranges 1 sends the whole body
            chosen = (start, end - 1)
        elif start == 0:
            return None
        if _char(value, pos) != ",":
            break
        pos += 1
    if chosen is None:
        raise RangeError("range not satisfiable")
    return chosen


_MAX = 2**63 - 1


def _char(value: str, pos: int) -> str:
    return value[pos] if pos < len(value) else ""


def _skip_spaces(value: str, pos: int) -> int:
    while _char(value, pos) == " ":
        pos += 1
    return pos


def _number(value: str, pos: int) -> tuple[int, int]:
    """ASCII digits at ``pos`` → (number, position after). Raises RangeError when none or too large."""
    end = pos
    while _char(value, end) in _DIGITS:
        end += 1
    digits = value[pos:end].lstrip("0")  # leading zeros are fine, as in nginx
    if end == pos or len(digits) > 19 or int(digits or "0") > _MAX:
        raise RangeError(f"malformed Range {value[:100]!r}")
    return int(digits or "0"), end


_DIGITS = frozenset("0123456789")


def _one_range(value: str, pos: int, size: int) -> tuple[int, int, int]:
    """One range at ``pos`` → (start, end exclusive, position after); ends at ``,`` or the end."""
    pos = _skip_spaces(value, pos)
    if _char(value, pos) == "-":
        suffix, pos = _number(value, pos + 1)
        pos = _skip_spaces(value, pos)
        _separator(value, pos)
        return (size - suffix if suffix < size else 0), size, pos
    start, pos = _number(value, pos)
    pos = _skip_spaces(value, pos)
    if _char(value, pos) != "-":
        raise RangeError(f"malformed Range {value[:100]!r}")
    pos = _skip_spaces(value, pos + 1)
    if _char(value, pos) in (",", ""):
        return start, size, pos
    last, pos = _number(value, pos)
    pos = _skip_spaces(value, pos)
    _separator(value, pos)
    return start, min(last + 1, size), pos


def _separator(value: str, pos: int) -> None:
    if _char(value, pos) not in (",", ""):
        raise RangeError(f"malformed Range {value[:100]!r}")
