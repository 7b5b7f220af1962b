"""Version ordering of container image tags (pure: no I/O).

``parse_tag`` reads a tag as a version (``v``-prefix, 1-4 numbers, pre-release,
packaging revision, Helm ``_build``, variant suffix) or classifies it as a
non-version or a cosign/referrers signature tag; it never raises for a string.
``order_key`` turns a tag into a printable-ASCII string whose byte order is the
version order, so a Redis sorted set of members ``member(tag)`` (all score 0)
is read in version order with ZRANGEBYLEX. ``after_bound``/``before_bound``
bound "strictly after/before v" in that total order (where a tag ``v`` would
sit, whether or not it exists: a paging cursor); the ``*_precedence_bound``
pair bounds "strictly greater/lower precedence" (all spellings of ``v``
excluded). ``family_bounds`` answers update checks in one scan. Ranges are in
``version_ranges.py``, built on ``precedence`` and ``version_floor``. The
rules, with examples, are in ``docs/version-ordering.md``; the in-memory
reference implementations the tests compare these keys and bounds with
(``sort_tags``, ``compare``, ``newer_than``) are in ``tests/support/versions.py``.

``packaging.version`` is deliberately not used: PEP 440 rejects variant
suffixes (``1.2.3-alpine``), reads ``-1``/``-rc1`` as post-/pre-releases in its
own way, ranks ``dev`` below ``alpha``, treats ``+local`` as greater than the
release, and normalises away the spelling that a tag family depends on.

Key layout (every character in 0x21-0x7e)::

    version:    "1" NUM NUM NUM NUM ("R" | "P" IDENT* "e") ("a" | "b" NUM) "!" TIEBREAK
    nonversion: "2" ESC(tag) "!"
    signature:  "3" ESC(tag) "!"

NUM is a length letter (``A``=1 digit ... ``T``=20 digits) and the digits
without leading zeros, so numbers compare numerically; missing numbers are 0.
``R`` (release) sorts above ``P`` (pre-release). IDENT is ``n`` NUM for a
numeric identifier or ``w`` chars ``!`` for an alphanumeric one; ``e`` ends the
list, so numeric < alphanumeric and a longer list wins on an equal prefix.
``a``/``b`` NUM is "no revision"/"revision N". Everything before the ``!`` is
the *precedence* part: it is self-delimiting, so no precedence part is a
prefix of another. ESC keeps UTF-8 bytes 0x23-0x7d and writes the others as
``"XX`` (below) or ``~XX`` (above) in hex: byte order is preserved and ``!``
never occurs inside. TIEBREAK (variant, shape, build) orders tags of equal
precedence; the member ``key + "\\x00" + tag`` breaks the remaining ties.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

RELEASE, PRERELEASE, NONVERSION, SIGNATURE = "release", "prerelease", "nonversion", "signature"
VERSION_KINDS = (RELEASE, PRERELEASE)
# Entries of each parse cache (parse_tag, order_key): ~290 bytes an entry, held by every worker. 8,192
# cover the pages being read (a parse costs ~10 us); 65,536 held ~37 MiB a worker (issue #11, item 2).
CACHE_ENTRIES = 1 << 13
MAX_PARTS = 4
MAX_DIGITS = 20
# First identifier of a pre-release, case-insensitive. Single letters only with a number (a1, b2, m3):
# ``1.1.1a`` is an OpenSSL-style release, not an alpha.
PRERELEASE_WORDS = frozenset({
    "alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "milestone", "ea", "a", "b", "m"})
_SINGLE_LETTER_WORDS = frozenset({"a", "b", "m"})

B_VERSION, B_NONVERSION, B_SIGNATURE = "1", "2", "3"
SEP = "\x00"  # member = order_key(tag) + SEP + tag

_A = re.ASCII
_SIG = re.compile(r"sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?", _A)
_HASH = re.compile(r"[0-9a-f]{7,40}", _A)
_DATE_DASH = re.compile(r"((?:19|20)[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(?=-|$)", _A)
_DATE8 = re.compile(r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])", _A)
_CORE = re.compile(r"([vV]?)([0-9]+(?:\.[0-9]+)*)", _A)
_JAVA_U = re.compile(r"u([0-9]+)", _A)
_JAVA_B = re.compile(r"b[0-9]+(?:\.[0-9]+)*", _A)
_WORD = re.compile(r"([A-Za-z]+)([0-9]*)((?:\.[0-9A-Za-z]+)*)", _A)
_BUILD = re.compile(r"[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*", _A)
_REVISION = re.compile(r"(r?)([0-9]+)", _A)
_RUNS = re.compile(r"[0-9]+|[^0-9]+", _A)

# ESC as a str.translate table over the latin-1 view of the UTF-8 bytes.
_ESC_TABLE = {b: (chr(b) if 0x23 <= b <= 0x7D else ('"%02X' if b < 0x23 else "~%02X") % b) for b in range(256)}


def _esc(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("latin-1").translate(_ESC_TABLE)


def _num(n: int) -> str:
    digits = str(n)
    return chr(0x40 + len(digits)) + digits


class Family(NamedTuple):
    """Tags of one family are update candidates for each other.

    ``shape`` spells the version's form (``N.N``, ``vN.N.N``, ``N.N.N_B``,
    ``NuN-bN``, ``YYYYMMDD``, ``YYYY-MM-DD``, ``N.N.N-rN``; pre-releases do not
    change it); ``variant`` is the suffix, exactly. Non-versions and
    signatures are their own family (shape ``nonversion``/``signature``).
    """
    shape: str
    variant: str

    def __str__(self) -> str:
        if self.shape in (NONVERSION, SIGNATURE):
            return f"{self.shape}:{self.variant}"
        return self.shape + ("-" + self.variant if self.variant else "")


@dataclass(frozen=True)
class TagVersion:
    tag: str
    kind: str
    family: Family
    v_prefix: str = ""
    numbers: tuple[int, ...] = ()
    prerelease: tuple[int | str, ...] = ()
    revision: int | None = None
    build: str | None = None
    variant: str = ""
    shape: str = ""
    subject_digest: str | None = None
    signature_kind: str | None = None  # sig | att | sbom | referrers

    @property
    def is_version(self) -> bool:
        return self.kind in VERSION_KINDS


def _idents(word: str, number: str, more: str) -> tuple[int | str, ...] | None:
    """Pre-release identifiers: the word (lower-cased), its glued number, then ``.x`` identifiers."""
    if word.lower() not in PRERELEASE_WORDS or (word.lower() in _SINGLE_LETTER_WORDS and not number):
        return None
    out: list[int | str] = [word.lower()]
    for part in ([number] if number else []) + more.split(".")[1:]:
        if part.isdigit():
            if len(part) > MAX_DIGITS:
                return None
            out.append(int(part))
        else:
            out.append(part)
    return tuple(out)


def _parse_version(tag: str) -> TagVersion | None:
    if _HASH.fullmatch(tag) and not tag.isdigit():
        return None  # commit hash (Renovate's rule)
    v, build, build_style, pre = "", None, "_", None
    m = _DATE_DASH.match(tag)
    if m:
        numbers, shape, pos = tuple(int(g) for g in m.groups()), "YYYY-MM-DD", m.end()
    else:
        m = _CORE.match(tag)
        if not m:
            return None
        v, parts, pos = m.group(1), m.group(2).split("."), m.end()
        if len(parts) > MAX_PARTS or any(len(p) > MAX_DIGITS for p in parts):
            return None
        numbers = tuple(int(p) for p in parts)
        shape = v + (("YYYYMMDD" if _DATE8.fullmatch(parts[0]) else "N") if len(parts) == 1
                     else ".".join("N" * len(parts)))
        mu = _JAVA_U.match(tag, pos) if len(parts) == 1 else None
        if mu and len(mu.group(1)) <= MAX_DIGITS:  # Java 8 update: 8u412(-b08)
            numbers, shape, pos = numbers + (int(mu.group(1)),), v + "NuN", mu.end()
        else:
            mw = _WORD.match(tag, pos)
            if mw:  # glued pre-release: 3.13.0rc2, 1.21rc1, 8.1.0RC1, 3.14.0a5
                pre = _idents(*mw.groups())
                if pre is None:
                    return None
                pos = mw.end()
        if tag.startswith("_", pos):  # Helm: '_' stands for '+'
            mb = _BUILD.match(tag, pos + 1)
            if not mb:
                return None
            build, pos = mb.group(), mb.end()
    rest = tag[pos:]
    if rest and not rest.startswith("-"):
        return None
    pieces = rest[1:].split("-") if rest else []
    if any(not p for p in pieces):
        return None
    i = 0
    if shape.endswith("NuN") and pieces and _JAVA_B.fullmatch(pieces[0]):
        build, build_style, i = pieces[0], "-b", 1
    if pre is None and i < len(pieces):
        head, underscore, build_text = pieces[i].partition("_")
        mw = _WORD.fullmatch(head)
        cand = _idents(*mw.groups()) if mw else None
        if cand is not None and not (underscore and (build is not None or not _BUILD.fullmatch(build_text))):
            pre, i = cand, i + 1
            if underscore:
                build = build_text
    revision, rev_shape = None, ""
    if i < len(pieces):
        mr = _REVISION.fullmatch(pieces[i])
        if mr and len(mr.group(2)) <= MAX_DIGITS:
            revision, rev_shape, i = int(mr.group(2)), "-" + mr.group(1) + "N", i + 1
    variant = "-".join(pieces[i:])
    if build is not None:
        shape += "-bN" if build_style == "-b" else "_B"
    shape += rev_shape
    return TagVersion(tag=tag, kind=PRERELEASE if pre else RELEASE, family=Family(shape, variant),
                      v_prefix=v, numbers=numbers, prerelease=pre or (), revision=revision,
                      build=build, variant=variant, shape=shape)


@lru_cache(maxsize=CACHE_ENTRIES)
def parse_tag(tag: str) -> TagVersion:
    """Classify and parse ``tag``; never raises for a ``str``."""
    m = _SIG.fullmatch(tag)
    if m:
        return TagVersion(tag=tag, kind=SIGNATURE, family=Family(SIGNATURE, "sha256:" + m.group(1)),
                          subject_digest="sha256:" + m.group(1), signature_kind=m.group(2) or "referrers")
    return _parse_version(tag) or TagVersion(tag=tag, kind=NONVERSION, family=Family(NONVERSION, tag))


def precedence(p: TagVersion) -> str:
    """The precedence part of ``order_key`` without its closing ``!``: equal iff the precedences are."""
    if p.kind == NONVERSION:
        return B_NONVERSION + _esc(p.tag)
    if p.kind == SIGNATURE:
        return B_SIGNATURE + _esc(p.tag)
    out = [B_VERSION, *(_num(n) for n in p.numbers), _num(0) * (MAX_PARTS - len(p.numbers))]
    if p.prerelease:
        out.append("P")
        out.extend("n" + _num(x) if isinstance(x, int) else "w" + x + "!" for x in p.prerelease)
        out.append("e")
    else:
        out.append("R")
    out.append("a" if p.revision is None else "b" + _num(p.revision))
    return "".join(out)


def _natural(text: str) -> str:
    """Tie-break encoding of build metadata: digit runs numerically (``_9`` < ``_10``)."""
    out = []
    for run in _RUNS.findall(text):
        if run.isdigit() and len(run) <= MAX_DIGITS:
            out.append("1" + _num(int(run)))
        else:
            out.append("2" + _esc(run) + "!")
    return "".join(out) + "0"


def version_floor(numbers: tuple[int, ...]) -> str:
    """The position just below every version whose numbers are ``numbers`` (zero-padded), pre-releases included."""
    return B_VERSION + "".join(_num(n) for n in numbers + (0,) * (MAX_PARTS - len(numbers)))


@lru_cache(maxsize=CACHE_ENTRIES)
def order_key(tag: str) -> str:
    """Printable-ASCII key; byte order of keys (then of tags) is the version order, ascending."""
    p = parse_tag(tag)
    key = precedence(p) + "!"
    if p.is_version:
        build = "0" if p.build is None else "1" + _natural(p.build)
        key += _esc(p.variant) + "!" + p.shape + "!" + build
    return key


def member(tag: str) -> str:
    """The sorted-set member for ``tag``: ``order_key(tag) + "\\x00" + tag``."""
    return order_key(tag) + SEP + tag


def member_tag(value: str | bytes) -> str:
    """The tag stored in a member (inverse of ``member``)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogatepass")
    return value.partition(SEP)[2]


def after_bound(version_text: str) -> str:
    """ZRANGEBYLEX min: the members that sort strictly after ``version_text`` (a tag or not).

    "After" is the total version order (docs/version-ordering.md): where the tag ``version_text``
    would sit, so a paging cursor never skips the other spellings or variants
    of the same version. For "strictly greater precedence" use
    ``after_precedence_bound``.
    """
    return "(" + member(version_text)


def before_bound(version_text: str) -> str:
    """ZREVRANGEBYLEX max: the members that sort strictly before ``version_text`` (a tag or not)."""
    return "(" + member(version_text)


def after_precedence_bound(version_text: str) -> str:
    """ZRANGEBYLEX min: members of strictly greater precedence (every spelling/variant of it excluded)."""
    return "(" + precedence(parse_tag(version_text)) + '"'


def before_precedence_bound(version_text: str) -> str:
    """ZREVRANGEBYLEX max: members of strictly lower precedence."""
    return "(" + precedence(parse_tag(version_text))


def kind_bounds(kind: str) -> tuple[str, str]:
    """(min, max) ZRANGEBYLEX bounds of one bucket: ``version``, ``nonversion`` or ``signature``."""
    bounds = {"version": ("-", "(" + B_NONVERSION), NONVERSION: ("(" + B_NONVERSION, "(" + B_SIGNATURE),
              SIGNATURE: ("(" + B_SIGNATURE, "+")}
    if kind not in bounds:
        raise ValueError(f"unknown kind {kind!r}: expected one of {sorted(bounds)}")
    return bounds[kind]


@dataclass(frozen=True)
class FamilyBounds:
    """What a Redis caller needs to find the updates of ``current`` in one scan.

    ``ZREVRANGEBYLEX key max min`` lists every version member newer than
    ``current`` (newest first); keep those whose tag ``accepts``: same family,
    and pre-releases only for a pre-release ``current``.
    """
    current: str
    family: Family
    include_prerelease: bool
    min: str
    max: str

    def accepts(self, tag: str) -> bool:
        p = parse_tag(tag)
        return (p.is_version and p.family == self.family
                and (self.include_prerelease or p.kind == RELEASE)
                and member(tag) > member(self.current))


def family_bounds(current: str) -> FamilyBounds | None:
    """Scan bounds and filter for updates of ``current``; None when it is not a version."""
    p = parse_tag(current)
    if not p.is_version:
        return None
    return FamilyBounds(current=current, family=p.family, include_prerelease=p.kind == PRERELEASE,
                        min=after_bound(current), max=kind_bounds("version")[1])
