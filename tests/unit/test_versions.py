"""Version ordering of tags (registry_ext/oci/versions.py): parsing, order keys, Redis bounds, families."""
from __future__ import annotations

import collections
import functools
import gzip
import json
import random
import uuid
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings, strategies as st

from registry_ext.oci.versions import (
    Family, after_bound, after_precedence_bound, before_bound, before_precedence_bound, compare, family_bounds,
    is_update, kind_bounds, member, member_tag, newer_than, order_key, parse_tag, precedence_key, sort_tags)

DATA = Path("/work/shared/data/official-images-tag-history.jsonl.gz")
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


# --------------------------------------------------------------------------- real tags, table-driven

# tag, kind, numbers, prerelease, variant, family (str)
TABLE = [
    ("20", "release", (20,), (), "", "N"),
    ("20.11", "release", (20, 11), (), "", "N.N"),
    ("20.11.1", "release", (20, 11, 1), (), "", "N.N.N"),
    ("20.11.1-alpine3.19", "release", (20, 11, 1), (), "alpine3.19", "N.N.N-alpine3.19"),
    ("lts", "nonversion", (), (), "", "nonversion:lts"),
    ("current-alpine", "nonversion", (), (), "", "nonversion:current-alpine"),
    ("lts-bookworm", "nonversion", (), (), "", "nonversion:lts-bookworm"),
    ("3.13.0rc2-slim-bookworm", "prerelease", (3, 13, 0), ("rc", 2), "slim-bookworm", "N.N.N-slim-bookworm"),
    ("3.14.0a5-bullseye", "prerelease", (3, 14, 0), ("a", 5), "bullseye", "N.N.N-bullseye"),
    ("3.12.4", "release", (3, 12, 4), (), "", "N.N.N"),
    ("3.12", "release", (3, 12), (), "", "N.N"),
    ("3.3-rc-onbuild", "prerelease", (3, 3), ("rc",), "onbuild", "N.N-onbuild"),
    ("1.25-alpine-perl", "release", (1, 25), (), "alpine-perl", "N.N-alpine-perl"),
    ("mainline", "nonversion", (), (), "", "nonversion:mainline"),
    ("stable-alpine", "nonversion", (), (), "", "nonversion:stable-alpine"),
    ("16.3", "release", (16, 3), (), "", "N.N"),
    ("16", "release", (16,), (), "", "N"),
    ("16-bookworm", "release", (16,), (), "bookworm", "N-bookworm"),
    ("17beta2", "prerelease", (17,), ("beta", 2), "", "N"),
    ("3.20", "release", (3, 20), (), "", "N.N"),
    ("edge", "nonversion", (), (), "", "nonversion:edge"),
    ("20240606", "release", (20240606,), (), "", "YYYYMMDD"),
    ("7.2.5-alpine", "release", (7, 2, 5), (), "alpine", "N.N.N-alpine"),
    ("5.0.6-32bit", "release", (5, 0, 6), (), "32bit", "N.N.N-32bit"),
    ("8.8-m03-alpine3.23", "prerelease", (8, 8), ("m", 3), "alpine3.23", "N.N-alpine3.23"),
    ("1.22.4-bookworm", "release", (1, 22, 4), (), "bookworm", "N.N.N-bookworm"),
    ("1.23rc1", "prerelease", (1, 23), ("rc", 1), "", "N.N"),
    ("1.10-rc-nanoserver-sac2016", "prerelease", (1, 10), ("rc",), "nanoserver-sac2016", "N.N-nanoserver-sac2016"),
    ("tip-20260215-bookworm", "nonversion", (), (), "", "nonversion:tip-20260215-bookworm"),
    ("v1.30.2", "release", (1, 30, 2), (), "", "vN.N.N"),
    ("v1.31.0-rc.0", "prerelease", (1, 31, 0), ("rc", 0), "", "vN.N.N"),
    ("v1.31.0-alpha.3", "prerelease", (1, 31, 0), ("alpha", 3), "", "vN.N.N"),
    ("v3.7.0-ea.3-windowsservercore-ltsc2025", "prerelease", (3, 7, 0), ("ea", 3), "windowsservercore-ltsc2025",
     "vN.N.N-windowsservercore-ltsc2025"),
    ("windowsservercore-ltsc2022", "nonversion", (), (), "", "nonversion:windowsservercore-ltsc2022"),
    ("21-jdk", "release", (21,), (), "jdk", "N-jdk"),
    ("21.0.8_9-jdk-noble", "release", (21, 0, 8), (), "jdk-noble", "N.N.N_B-jdk-noble"),
    ("8u412-b08-jre", "release", (8, 412), (), "jre", "NuN-bN-jre"),
    ("8.1.25RC1-zts-bullseye", "prerelease", (8, 1, 25), ("rc", 1), "zts-bullseye", "N.N.N-zts-bullseye"),
    ("1.2.3_build.5", "release", (1, 2, 3), (), "", "N.N.N_B"),
    ("1.2.3-rc1-alpine", "prerelease", (1, 2, 3), ("rc", 1), "alpine", "N.N.N-alpine"),
    ("1.2.3-r5", "release", (1, 2, 3), (), "", "N.N.N-rN"),
    ("1.2.3-1", "release", (1, 2, 3), (), "", "N.N.N-N"),
    ("2024-01-15", "release", (2024, 1, 15), (), "", "YYYY-MM-DD"),
    ("2024.01.15", "release", (2024, 1, 15), (), "", "N.N.N"),
    ("1.0.0-SNAPSHOT", "prerelease", (1, 0, 0), ("snapshot",), "", "N.N.N"),
    ("2.0.0-M1", "prerelease", (2, 0, 0), ("m", 1), "", "N.N.N"),
    ("1.0.0-preview1", "prerelease", (1, 0, 0), ("preview", 1), "", "N.N.N"),
    ("3.0-dev", "prerelease", (3, 0), ("dev",), "", "N.N"),
    ("1.0.0-alpha.beta", "prerelease", (1, 0, 0), ("alpha", "beta"), "", "N.N.N"),
    ("1.1.1a", "nonversion", (), (), "", "nonversion:1.1.1a"),
    ("1.2.3.4.5", "nonversion", (), (), "", "nonversion:1.2.3.4.5"),
    ("1" * 21, "nonversion", (), (), "", "nonversion:" + "1" * 21),
    ("abc1234", "nonversion", (), (), "", "nonversion:abc1234"),
    ("1a2b3c4d5e6f", "nonversion", (), (), "", "nonversion:1a2b3c4d5e6f"),
    ("latest", "nonversion", (), (), "", "nonversion:latest"),
]


@pytest.mark.parametrize("tag,kind,numbers,prerelease,variant,family", TABLE)
def test_real_tag_table(tag, kind, numbers, prerelease, variant, family):
    p = parse_tag(tag)
    assert (p.tag, p.kind, p.numbers, p.prerelease, p.variant, str(p.family)) == (
        tag, kind, numbers, prerelease, variant, family)


def test_fields_of_prefix_revision_build_and_signatures():
    assert parse_tag("V2.1").v_prefix == "V" and parse_tag("v2.1").v_prefix == "v"
    assert parse_tag("1.2.3-r5").revision == 5 and parse_tag("1.2.3-1").revision == 1
    assert parse_tag("1.2.3-rc.1_build.5").build == "build.5"
    assert parse_tag("1.2.3-rc.1_build.5").prerelease == ("rc", 1)
    assert parse_tag("8u342-b07.1-jre").build == "b07.1"
    assert parse_tag("nanoserver-1809").kind == "nonversion"
    assert parse_tag("1.16.13-nanoserver-1809").revision is None  # a number after a variant piece is variant
    for tag, kind in ((SIG, "sig"), (ATT, "att"), (f"sha256-{H64}.sbom", "sbom"), (REF, "referrers")):
        p = parse_tag(tag)
        assert (p.kind, p.signature_kind, p.subject_digest) == ("signature", kind, "sha256:" + H64)
    assert parse_tag(f"sha256-{H64[:-1]}.sig").kind == "nonversion"
    assert parse_tag(f"sha256-{H64.upper()}.sig").kind == "nonversion"


ORDERS = {
    "node": ["20", "20.11", "20.11.1", "20.11.1-alpine3.19", "20.11.1-bookworm", "20.12.0", "current-alpine", "lts"],
    "python": ["3.12", "3.12.4", "3.13.0a1", "3.13.0b4", "3.13.0rc2-slim-bookworm", "3.13.0rc10",
               "3.13.0-slim-bookworm", "3.13.1"],
    "nginx": ["1.25", "1.25-alpine-perl", "1.25.3", "1.25.3-alpine", "mainline", "stable-alpine"],
    "postgres": ["16", "16-bookworm", "16.3", "17beta1", "17beta2", "17rc1", "17", "17.0"],
    "alpine": ["3", "3.19.1", "3.20", "3.20.1", "20240315", "20240606", "edge", "latest"],
    "redis": ["7.2.5", "7.2.5-alpine", "8.0-M03-alpine3.21", "8.0-rc1", "8.0"],
    "golang": ["1.22.4-bookworm", "1.23rc1", "1.23rc2", "1.23", "1.23.0", "tip-20260215-bookworm"],
    "kube": ["v1.30.2", "v1.31.0-alpha.3", "v1.31.0-beta.0", "v1.31.0-rc.0", "v1.31.0-rc.1", "v1.31.0"],
    "haproxy": ["3.0-dev", "3.0-dev0", "3.0-dev2", "3.0-dev13", "3.0", "3.0.1"],
    "eclipse-temurin": ["8-jdk", "8u412-b08-jre", "8u422-b05-jre", "21-jdk", "21.0.4_7-jdk", "21.0.4_11-jdk",
                        "21.0.5_11-jdk"],
    "php": ["8.3.0alpha1", "8.3.0beta3", "8.3.0RC1", "8.3.0RC6", "8.3.0", "8.3.0-apache"],
    "helm+revisions": ["1.2.3-rc.1", "1.2.3-rc.1-1", "1.2.3", "1.2.3_build.5", "1.2.3_build.10", "1.2.3-r1",
                       "1.2.3-r2", "1.2.4"],
    "misc": ["0.9", "1.0.0", "abc1234", "latest", "stable", REF, ATT, SIG],
}


@pytest.mark.parametrize("image", sorted(ORDERS))
def test_expected_orders(image):
    expected = ORDERS[image]
    shuffled = expected[:]
    random.Random(image).shuffle(shuffled)
    assert sort_tags(shuffled) == expected
    assert sort_tags(shuffled, descending=True) == expected[::-1]
    assert all(compare(a, b) == -1 and compare(b, a) == 1 for a, b in zip(expected, expected[1:]))


def test_documented_decisions():
    pk = precedence_key
    assert pk("1.2") == pk("1.2.0") == pk("1.2.0.0") == pk("v1.2") == pk("1.2-alpine") == pk("01.02")
    assert pk("1.2.3_build.5") == pk("1.2.3") != pk("1.2.3-1")   # build ignored, revision counts
    assert pk("1.2.3-rc1") == pk("1.2.3-rc.1") == pk("1.2.3rc1") == pk("1.2.3RC1")
    assert pk("1.2.3") < pk("1.2.3-1") < pk("1.2.3-2") < pk("1.2.4-rc1")   # revision above base
    assert pk("1.2.3-r1") == pk("1.2.3-1") and parse_tag("1.2.3-r1").family != parse_tag("1.2.3-1").family
    assert pk("4.4.0-rc2") < pk("4.4.0-rc13")            # glued word+number compares the number (not semver ASCII)
    assert pk("1.0.0-alpha") < pk("1.0.0-beta") < pk("1.0.0-dev") < pk("1.0.0-rc") < pk("1.0.0-snapshot")
    assert pk("2024-01-15") == pk("2024.1.15") and pk("20240115") > pk("3.20")
    assert parse_tag("20240115").family != parse_tag("3").family
    assert compare("1.2.3", "1.2.3") == 0 and compare("01.2", "1.2") == -1   # tags of equal key: by bytes
    assert order_key("1.2") < order_key("1.2.0") < order_key("1.2-alpine")   # equal precedence: variant, shape
    assert kind_bounds("version") == ("-", "(2") and kind_bounds("signature")[1] == "+"
    with pytest.raises(ValueError):
        kind_bounds("bogus")


def test_member_round_trip_and_is_update():
    tag = "3.13.0rc2-slim-bookworm"
    assert member_tag(member(tag)) == tag and member_tag(member(tag).encode()) == tag
    assert is_update("20.11-alpine", "20.12-alpine") and not is_update("20.11-alpine", "20.12.0-alpine")
    assert not is_update("20.11-alpine", "20.10-alpine") and not is_update("latest", "20.12-alpine")
    assert not is_update("1.2.3", "1.2.4-rc1") and is_update("1.2.4-rc1", "1.2.4-rc2")
    assert is_update("21.0.8_9-jdk", "21.0.8_10-jdk")     # a newer build of one version is an update
    assert family_bounds("latest") is None and newer_than(SIG, [SIG]) == []


# --------------------------------------------------------------------------- strategies

WORDS = ["alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "milestone", "ea"]
SMALL = st.integers(0, 12)
BIG = st.integers(0, 10 ** 20 - 1)
NUM = st.one_of(SMALL, SMALL, BIG)
IDENT_ALNUM = st.from_regex(r"[0-9A-Za-z]{0,3}[A-Za-z][0-9A-Za-z]{0,3}", fullmatch=True)
IDENT = st.one_of(NUM.map(str), IDENT_ALNUM)
VARIANTS = ["", "alpine", "alpine3.19", "slim-bookworm", "alpine-perl", "jdk", "windowsservercore-ltsc2022",
            "nanoserver-1809", "32bit", "bookworm"]


@st.composite
def version_tags(draw):
    tag = draw(st.sampled_from(["", "", "v"])) + ".".join(str(n) for n in draw(st.lists(NUM, min_size=1, max_size=4)))
    pre = draw(st.one_of(st.none(), st.tuples(st.sampled_from(WORDS + ["a", "b", "RC", "M"]), SMALL,
                                              st.lists(IDENT, max_size=2))))
    glued = draw(st.booleans())
    if pre is not None:
        word, n, more = pre
        text = word + str(n) + "".join("." + i for i in more)
        tag += text if glued else "-" + text
    if draw(st.booleans()):
        tag += "_" + draw(st.sampled_from(["1", "9", "10", "build.5", "b2"]))
    if draw(st.integers(0, 4)) == 0:
        tag += draw(st.sampled_from(["-1", "-2", "-r1", "-r10"]))
    variant = draw(st.sampled_from(VARIANTS))
    return tag + ("-" + variant if variant else "")


OTHER_TAGS = st.sampled_from(["latest", "edge", "lts", "stable-alpine", "abc1234", "mainline", "1.1.1a", SIG, ATT,
                              REF, "tip-20260215-bookworm", "2024-01-15", "20240606", "8u412-b08-jre"])
TAGS = st.one_of(version_tags(), version_tags(), OTHER_TAGS, st.text(max_size=12),
                 st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,15}", fullmatch=True))


def semver_cmp(a: str, b: str) -> int:
    """Reference SemVer 2.0.0 precedence (semver.org section 11); no build metadata in tags."""
    def split(v):
        core, _, pre = v.lstrip("v").partition("-")
        return tuple(int(x) for x in core.split(".")), (pre.split(".") if pre else None)
    (ca, pa), (cb, pb) = split(a), split(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if pa is None or pb is None:
        return (pa is None) - (pb is None)
    for x, y in zip(pa, pb):
        if x != y:
            if x.isdigit() and y.isdigit():
                return -1 if int(x) < int(y) else 1
            if x.isdigit() or y.isdigit():
                return -1 if x.isdigit() else 1
            return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@st.composite
def semvers(draw):
    core = ".".join(str(draw(NUM)) for _ in range(3))
    if draw(st.booleans()):
        return draw(st.sampled_from(["", "v"])) + core
    idents = [draw(st.sampled_from(WORDS))] + draw(st.lists(IDENT, max_size=4))
    return core + "-" + ".".join(idents)


def sign(x) -> int:
    return (x > 0) - (x < 0)


def pcmp(a: str, b: str) -> int:
    ka, kb = precedence_key(a), precedence_key(b)
    return (ka > kb) - (ka < kb)


# --------------------------------------------------------------------------- properties

@given(st.text())
@example("\ud800")
@example("1.2.3-\x00")
def test_parse_never_raises_and_keys_are_printable(text):
    p = parse_tag(text)
    assert p.kind in ("release", "prerelease", "nonversion", "signature") and p.tag == text
    key = order_key(text)
    assert key and all(0x21 <= ord(c) <= 0x7E for c in key)
    assert member_tag(member(text)) == text
    hash(p.family)


@settings(max_examples=300)
@given(semvers(), semvers())
@example("1.0.0-alpha", "1.0.0-alpha.1")
@example("1.0.0-alpha.beta", "1.0.0-beta")
@example("1.0.0-beta.2", "1.0.0-beta.11")
@example("1.0.0-rc.1", "1.0.0")
@example("1.0.0-alpha.1", "1.0.0-alpha.beta")
def test_semver_precedence_matches_reference(a, b):
    assert pcmp(a, b) == semver_cmp(a, b)


def test_semver_org_example_order():
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]
    assert sort_tags(reversed(chain)) == chain


@given(st.lists(BIG, min_size=1, max_size=4), st.lists(BIG, min_size=1, max_size=4))
def test_numbers_compare_numerically(x, y):
    pad = lambda n: tuple(n) + (0,) * (4 - len(n))  # noqa: E731
    a, b = ".".join(map(str, x)), ".".join(map(str, y))
    assert pcmp(a, b) == sign((pad(x) > pad(y)) - (pad(x) < pad(y)))


@given(st.lists(TAGS, max_size=8))
def test_total_order_consistent_with_compare(tags):
    by_key = sort_tags(tags)
    assert by_key == sorted(tags, key=functools.cmp_to_key(compare))
    assert by_key == sorted(tags, key=lambda t: (order_key(t), t))
    assert by_key == [member_tag(m) for m in sorted(map(member, tags), key=lambda m: m.encode())]
    for a in tags:
        for b in tags:
            assert compare(a, b) == -compare(b, a) and (compare(a, b) == 0) == (a == b)


@given(TAGS, TAGS)
def test_no_key_is_a_prefix_across_precedences(a, b):
    pa, pb = precedence_key(a), precedence_key(b)
    if pa != pb:
        assert not pa.startswith(pb) and not pb.startswith(pa)
        assert not order_key(a).startswith(order_key(b)) and not order_key(b).startswith(order_key(a))
    ka = order_key(a)
    assert ka.startswith(pa)


@given(st.lists(TAGS, max_size=12), TAGS)
def test_after_and_before_bounds_against_zrangebylex(tags, v):
    members = [member(t) for t in tags]
    after = zrangebylex(members, after_bound(v), "+")
    before = zrevrangebylex(members, before_bound(v), "-")
    ordered = sorted(set(tags), key=member)
    assert [member_tag(m) for m in after] == [t for t in ordered if compare(t, v) > 0]
    assert [member_tag(m) for m in before] == [t for t in ordered if compare(t, v) < 0][::-1]
    gt = zrangebylex(members, after_precedence_bound(v), "+")
    lt = zrevrangebylex(members, before_precedence_bound(v), "-")
    assert [member_tag(m) for m in gt] == [t for t in ordered if precedence_key(t) > precedence_key(v)]
    assert [member_tag(m) for m in lt] == [t for t in ordered if precedence_key(t) < precedence_key(v)][::-1]


@given(st.lists(TAGS, max_size=15), TAGS)
def test_newer_than_brute_force_and_one_scan(tags, current):
    got = newer_than(current, tags)
    cur = parse_tag(current)
    want = [] if not cur.is_version else sorted(
        {t for t in tags if parse_tag(t).family == cur.family and compare(t, current) > 0
         and (parse_tag(t).kind == "release" or cur.kind == "prerelease")}, key=member, reverse=True)
    assert got == want
    fb = family_bounds(current)
    if fb is not None:  # one ZREVRANGEBYLEX scan, then the family filter
        scanned = zrevrangebylex([member(t) for t in tags], fb.max, fb.min)
        assert [member_tag(m) for m in scanned if fb.accepts(member_tag(m))] == got


@given(version_tags(), version_tags())
def test_family_is_variant_and_shape(a, b):
    pa, pb = parse_tag(a), parse_tag(b)
    assume(pa.is_version and pb.is_version)
    assert (pa.family == pb.family) == (pa.variant == pb.variant and pa.shape == pb.shape)


# --------------------------------------------------------------------------- the real tag history

@pytest.fixture(scope="module")
def real_tags() -> dict[str, set[str]]:
    if not DATA.exists():
        pytest.skip(f"{DATA} not available")
    tags: dict[str, set[str]] = collections.defaultdict(set)
    with gzip.open(DATA, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            tags[row["image"]].add(row["tag"])
    return tags


def test_all_real_tags(real_tags):
    every = sorted(set().union(*real_tags.values()))
    assert len(every) > 40000
    kinds = collections.Counter(parse_tag(t).kind for t in every)
    assert kinds["release"] > 30000 and kinds["prerelease"] > 10000 and kinds["nonversion"] < 1200
    for t in every:
        assert all(0x21 <= ord(c) <= 0x7E for c in order_key(t))
    ordered = sort_tags(every)
    shuffled = every[:]
    random.Random(7).shuffle(shuffled)
    assert sort_tags(shuffled) == ordered                      # deterministic
    members = [member(t).encode() for t in ordered]
    assert all(x < y for x, y in zip(members, members[1:]))    # strictly increasing: total, no ties
    assert sorted(members) == members                          # Redis memcmp order is the version order
    first_non = next(i for i, t in enumerate(ordered) if not parse_tag(t).is_version)
    assert all(not parse_tag(t).is_version for t in ordered[first_non:])


def test_real_newer_than_spot_checks(real_tags):
    node = newer_than("20.11-alpine", real_tags["node"])
    assert node and all(str(parse_tag(t).family) == "N.N-alpine" for t in node)
    assert node[-1] == "20.12-alpine" and "21.0-alpine" in node
    py = newer_than("3.13.0rc2-slim-bookworm", real_tags["python"])
    assert "3.13.0rc3-slim-bookworm" in py and "3.13.0-slim-bookworm" in py
    assert py[-1] == "3.13.0rc3-slim-bookworm" and all(t.endswith("-slim-bookworm") for t in py)
    assert newer_than("3", real_tags["alpine"]) == []          # date tags are another family
    assert newer_than("20240606", real_tags["alpine"])[-1] == "20240807"
    assert newer_than("3.19", real_tags["alpine"])[-1] == "3.20"
    assert newer_than("8u412-b08-jre-jammy", real_tags["eclipse-temurin"])[-1] == "8u422-b05-jre-jammy"
    jdk = newer_than("21.0.4_7-jdk-jammy", real_tags["eclipse-temurin"])
    assert jdk[-1] == "21.0.5_11-jdk-jammy" and all(str(parse_tag(t).family) == "N.N.N_B-jdk-jammy" for t in jdk)
    mongo = newer_than("7.0.0-rc5-jammy", real_tags["mongo"])   # rc10 after rc8, not before rc2
    assert mongo[-5:] == ["7.0.0-jammy", "7.0.0-rc10-jammy", "7.0.0-rc8-jammy", "7.0.0-rc7-jammy",
                          "7.0.0-rc6-jammy"]
    redis_ = newer_than("7.2.4-alpine", real_tags["redis"])
    assert redis_[-1] == "7.2.5-alpine" and all(parse_tag(t).kind == "release" for t in redis_)
    assert not any("rc" in t for t in newer_than("7.0.0-bullseye", real_tags["redis"]))
    assert newer_than("1.25-alpine-perl", real_tags["nginx"])[-2:] == ["1.27-alpine-perl", "1.26-alpine-perl"]
    assert newer_than("latest", real_tags["nginx"]) == [] and newer_than("mainline", real_tags["nginx"]) == []
    traefik = newer_than("v2.11.0", real_tags["traefik"])
    assert traefik[-1] == "v2.11.1" and all(str(parse_tag(t).family) == "vN.N.N" for t in traefik)
    assert newer_than("2.11.0", real_tags["traefik"])[-1] == "2.11.1"


def test_real_data_in_a_real_redis(real_tags, redis_client):
    """The emulation above agrees with ZRANGEBYLEX of a real redis-server on all node tags."""
    key = f"test:versions:{uuid.uuid4().hex}"
    node = sorted(real_tags["node"])
    try:
        for i in range(0, len(node), 1000):
            redis_client.zadd(key, {member(t): 0 for t in node[i:i + 1000]})
        members = [member(t) for t in node]
        assert [m.decode() for m in redis_client.zrangebylex(key, "-", "+")] == zrangebylex(members, "-", "+")
        for v in ("20.11", "20.11.1-alpine3.19", "lts", "0.1", "99", "18.0.0-rc1"):
            real = [m.decode() for m in redis_client.zrangebylex(key, after_bound(v), "+")]
            assert real == zrangebylex(members, after_bound(v), "+")
            real = [m.decode() for m in redis_client.zrevrangebylex(key, before_precedence_bound(v), "-")]
            assert real == zrevrangebylex(members, before_precedence_bound(v), "-")
        fb = family_bounds("20.11-alpine")
        scanned = [member_tag(m.decode()) for m in redis_client.zrevrangebylex(key, fb.max, fb.min)]
        assert [t for t in scanned if fb.accepts(t)] == newer_than("20.11-alpine", node)
    finally:
        redis_client.delete(key)


def test_family_type():
    assert parse_tag("1.2-alpine").family == Family("N.N", "alpine")
    assert str(Family("N.N", "")) == "N.N"
