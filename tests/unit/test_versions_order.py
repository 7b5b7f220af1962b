"""Version ordering of tags (registry_ext/oci/versions.py), order: expected orders of real images, the
documented decisions, and properties (against a SemVer reference and an emulated ZRANGEBYLEX) of order keys,
Redis bounds, ``newer_than`` and families.
"""
from __future__ import annotations

import functools
import random

import pytest
from hypothesis import assume, example, given, settings, strategies as st

from registry_ext.oci.versions import (after_bound, after_precedence_bound, before_bound, before_precedence_bound,
                                       family_bounds, kind_bounds, member, member_tag, order_key, parse_tag)
from tests.support.versions import (ATT, REF, SIG, compare, is_update, newer_than, precedence_key, sort_tags,
                                    zrangebylex, zrevrangebylex)

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
