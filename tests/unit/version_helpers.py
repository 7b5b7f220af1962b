"""What the test_versions_*.py files share: signature-style tags and a ZRANGEBYLEX emulation."""
from __future__ import annotations

H64 = "0123456789abcdef" * 4
SIG, ATT, REF = f"sha256-{H64}.sig", f"sha256-{H64}.att", f"sha256-{H64}"


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
