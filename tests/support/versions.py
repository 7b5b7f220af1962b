"""What the version tests share: signature-style tags, a ZRANGEBYLEX emulation, and the oracles.

The oracles are in-memory reference implementations of what the registry
answers from Redis with ``registry_ext.oci.versions`` keys and bounds: the
total version order (``compare``, ``sort_tags``), the precedence part of a
key (``precedence_key``), update checks (``newer_than``, ``is_update``) and
range filtering (``range_filter``). The registry never sorts or filters a
list in Python; the tests check that its one-scan answers equal these.
"""
from __future__ import annotations

from typing import Iterable

from registry_ext.oci.version_ranges import VersionRange
from registry_ext.oci.versions import family_bounds, member, parse_tag, precedence

H64 = "0123456789abcdef" * 4
SIG, ATT, REF = f"sha256-{H64}.sig", f"sha256-{H64}.att", f"sha256-{H64}"


# --------------------------------------------------------------------------- oracles

def compare(a: str, b: str) -> int:
    """-1, 0 or 1: the total order of ``sort_tags`` (0 only when ``a == b``)."""
    ma, mb = member(a), member(b)
    return (ma > mb) - (ma < mb)


def sort_tags(tags: Iterable[str], descending: bool = False) -> list[str]:
    """Tags in version order (ascending: lowest version first, non-versions, then signatures)."""
    return sorted(tags, key=member, reverse=descending)


def precedence_key(tag: str) -> str:
    """The precedence part of ``order_key(tag)``, up to and including its ``!``.

    Equal iff the tags have equal precedence; ordered like the precedences;
    never a proper prefix of another precedence key.
    """
    return precedence(parse_tag(tag)) + "!"


def newer_than(current: str, candidates: Iterable[str]) -> list[str]:
    """Same-family tags strictly newer than ``current``, newest first (pre-releases only for a pre-release)."""
    fb = family_bounds(current)
    if fb is None:
        return []
    return sort_tags({t for t in candidates if fb.accepts(t)}, descending=True)


def is_update(current: str, candidate: str) -> bool:
    """True when ``candidate`` is offered as an update of ``current`` (see ``newer_than``)."""
    fb = family_bounds(current)
    return fb is not None and fb.accepts(candidate)


def range_filter(rng: VersionRange, tags: Iterable[str]) -> list[str]:
    """The tags ``rng`` contains, in ascending version order."""
    return sort_tags(t for t in tags if rng.contains(t))


# --------------------------------------------------------------------------- a ZRANGEBYLEX emulation

def _ok_min(m: bytes, bound: str) -> bool:
    if bound in ("-", "+"):
        return bound == "-"
    b = bound[1:].encode()
    return m > b if bound[0] == "(" else m >= b


def _ok_max(m: bytes, bound: str) -> bool:
    if bound in ("-", "+"):
        return bound == "+"
    b = bound[1:].encode()
    return m < b if bound[0] == "(" else m <= b


def zrangebylex(members, lo: str, hi: str) -> list[str]:
    """Redis ZRANGEBYLEX over score-0 members: memcmp order of the UTF-8 bytes."""
    assert lo[0] in "-+[(" and hi[0] in "-+[("
    raw = sorted({m.encode() for m in members})
    return [m.decode() for m in raw if _ok_min(m, lo) and _ok_max(m, hi)]


def zrevrangebylex(members, hi: str, lo: str) -> list[str]:
    return zrangebylex(members, lo, hi)[::-1]
