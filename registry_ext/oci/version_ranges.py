"""Version ranges over tags, answered by one ZRANGEBYLEX (pure: no I/O).

Syntax (docs/version-ordering.md): constraints separated by commas (or
spaces), all of which must hold::

    >=1.2  >1.0.0  <2  <=2.1  ==1.2.3  =1.2.3  1.2.3  !=1.4
    ~1.2     >=1.2, <1.3     (~1 = >=1,<2; ~1.2.3 = >=1.2.3,<1.3)
    ^1.2     >=1.2, <2       (^0.2.3 = >=0.2.3,<0.3; ^0.0.3 = >=0.0.3,<0.0.4)
    1.2.x  1.2.*  1.*  *     every version whose numbers start with 1.2

Ranges compare precedence only (numbers, pre-release, revision): variants,
``v`` and shapes are not filtered, so ``==1.2`` matches ``1.2``, ``1.2.0`` and
``1.2-alpine``. Pre-release tags match only when some constraint names a
pre-release (``>=2.0.0-rc.1``), as in Masterminds/semver v3. Upper bounds made
from ``~``, ``^`` and wildcards exclude the next version's pre-releases
(``<1.3`` from ``~1.2`` is ``<1.3.0-0``). ``bounds()`` gives the ZRANGEBYLEX
window; ``!=`` and the pre-release rule are applied afterwards by
``contains``. This module builds on ``versions.py`` (which does not import it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from registry_ext.oci.versions import (B_NONVERSION, B_VERSION, PRERELEASE, member, parse_tag, precedence,
                                      version_floor)

MAX_RANGE_LENGTH = 200
MAX_CONSTRAINTS = 10
_OP = re.compile(r"(<=|>=|==|!=|<|>|=|~|\^)?(.*)", re.ASCII | re.DOTALL)
_SPACE_AFTER_OP = re.compile(r"(<=|>=|==|!=|<|>|=|~|\^)\s+")
_WILDCARD = re.compile(r"[vV]?((?:[0-9]{1,20}\.){0,3})[xX*](?:\.[xX*])*", re.ASCII)


def _bump(numbers: tuple[int, ...], index: int) -> tuple[int, ...]:
    return numbers[:index] + (numbers[index] + 1,)


@dataclass(frozen=True)
class Constraint:
    """One constraint as an open interval of member positions (``low < member < high``), or its complement."""
    text: str
    low: str | None
    high: str | None
    negate: bool = False
    prerelease: bool = False

    def admits(self, member: str) -> bool:
        inside = (self.low is None or member > self.low) and (self.high is None or member < self.high)
        return inside != self.negate


@dataclass(frozen=True)
class VersionRange:
    text: str
    constraints: tuple[Constraint, ...]
    include_prerelease: bool

    def contains(self, tag: str) -> bool:
        p = parse_tag(tag)
        if not p.is_version or (p.kind == PRERELEASE and not self.include_prerelease):
            return False
        m = member(tag)
        return all(c.admits(m) for c in self.constraints)

    def bounds(self) -> tuple[str, str]:
        """(min, max) for ``ZRANGEBYLEX key min max``: a superset of the matches, inside the version bucket."""
        lows = [c.low for c in self.constraints if not c.negate and c.low is not None]
        highs = [c.high for c in self.constraints if not c.negate and c.high is not None]
        return "(" + max(lows, default=B_VERSION), "(" + min(highs, default=B_NONVERSION)


def _constraint(text: str) -> Constraint:
    match = _OP.fullmatch(text)
    assert match is not None  # (.*) under DOTALL matches any rest
    op, vtext = match.groups()
    op = op or "=="
    wild = _WILDCARD.fullmatch(vtext)
    if wild:
        numbers = tuple(int(n) for n in wild.group(1).split(".")[:-1])
        if not numbers:
            if op not in ("=", "==", "~", "^"):
                raise ValueError(f"{text!r}: a bare wildcard takes no operator other than '='")
            return Constraint(text, None, None)
        if op in ("~", "^"):
            op, vtext = op, ".".join(map(str, numbers))
        else:
            lo, hi = version_floor(numbers), version_floor(_bump(numbers, len(numbers) - 1))
            return {"=": Constraint(text, lo, hi), "==": Constraint(text, lo, hi),
                    "!=": Constraint(text, lo, hi, negate=True), ">=": Constraint(text, lo, None),
                    ">": Constraint(text, hi, None), "<": Constraint(text, None, lo),
                    "<=": Constraint(text, None, hi)}[op]
    p = parse_tag(vtext)
    if not vtext or not p.is_version:
        raise ValueError(f"{text!r}: {vtext!r} is not a version")
    if p.variant:
        raise ValueError(f"{text!r}: a range compares versions; drop the variant {p.variant!r}")
    at = precedence(p)  # member > at: precedence >= v; member > at + '"': precedence > v
    above, pre = at + '"', bool(p.prerelease)
    if op in ("~", "^"):
        n = p.numbers
        if op == "~":
            index = 0 if len(n) == 1 else 1
        else:
            index = next((i for i, x in enumerate(n) if x), len(n) - 1)
        return Constraint(text, at, version_floor(_bump(n, index)), prerelease=pre)
    return {"=": Constraint(text, at, above, prerelease=pre), "==": Constraint(text, at, above, prerelease=pre),
            "!=": Constraint(text, at, above, negate=True, prerelease=pre),
            ">=": Constraint(text, at, None, prerelease=pre), ">": Constraint(text, above, None, prerelease=pre),
            "<": Constraint(text, None, at, prerelease=pre), "<=": Constraint(text, None, above, prerelease=pre)}[op]


def parse_range(text: str) -> VersionRange:
    """Parse a range such as ``>=1.2,<2`` or ``~1.4``. Raises ValueError with the reason."""
    if not isinstance(text, str):
        raise ValueError("a range must be a string")
    if len(text) > MAX_RANGE_LENGTH:
        raise ValueError(f"range is longer than {MAX_RANGE_LENGTH} characters")
    if "||" in text:
        raise ValueError("alternatives ('||') are not supported; ask once per range")
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise ValueError("empty range")
    tokens: list[str] = []
    for part in parts:
        if not part:
            raise ValueError(f"empty constraint in {text!r}")
        tokens += _SPACE_AFTER_OP.sub(r"\1", part).split()
    if len(tokens) > MAX_CONSTRAINTS:
        raise ValueError(f"more than {MAX_CONSTRAINTS} constraints")
    constraints = tuple(_constraint(token) for token in tokens)
    return VersionRange(text, constraints, include_prerelease=any(c.prerelease for c in constraints))
