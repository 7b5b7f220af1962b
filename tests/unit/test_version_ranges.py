"""Version ranges (registry_ext/oci/version_ranges.py): syntax, matching, ZRANGEBYLEX bounds."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from registry_ext.oci.version_ranges import MAX_CONSTRAINTS, MAX_RANGE_LENGTH, parse_range
from registry_ext.oci.versions import member, member_tag, parse_tag
from tests.support.versions import range_filter, sort_tags, zrangebylex

CASES = [
    # range, matching tags, non-matching tags
    (">=1.2,<2", ["1.2", "1.2.0", "v1.2.0", "1.9.9", "1.2-alpine", "1.2.3_build.5"],
     ["1.1.9", "2", "2.0.0", "2.0.0-rc1", "1.5.0-rc1", "latest", "sha256-" + "a" * 64]),
    (">1.0.0", ["1.0.1", "1.0.0-1", "2"], ["1.0.0", "1.0", "1", "0.9", "1.0.1-rc1"]),
    ("==1.2.3", ["1.2.3", "v1.2.3", "1.2.3-alpine", "1.2.3_build.5", "1.2.3.0"], ["1.2.3-1", "1.2.4", "1.2.3-rc1"]),
    ("1.2.3", ["1.2.3"], ["1.2.4"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4"]),
    ("!=1.4", ["1.3", "1.4.1", "2"], ["1.4", "1.4.0", "1.4-slim"]),
    ("<=2.1", ["2.1", "2.1.0", "0.1"], ["2.1.1", "2.1.0-1"]),
    ("<2", ["1.99", "0"], ["2", "2.0.0-rc1"]),
    ("~1.2", ["1.2", "1.2.0", "1.2.9"], ["1.3", "1.3.0", "1.1.99"]),
    ("~1.2.3", ["1.2.3", "1.2.10"], ["1.2.2", "1.3.0"]),
    ("~1", ["1", "1.0", "1.9"], ["2", "0.9"]),
    ("^1.2", ["1.2", "1.99.1"], ["2.0", "1.1", "2.0.0-rc1"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
    ("^0.0", ["0.0.9"], ["0.1"]),
    ("1.2.x", ["1.2", "1.2.0", "1.2.5", "1.2.5-alpine"], ["1.3", "1.20", "1.1", "1", "12"]),
    ("1.2.*", ["1.2.5"], ["1.20.0"]),
    ("1.x.x", ["1", "1.9.9"], ["2", "0.9"]),
    ("!=1.2.*", ["1.3", "1.1"], ["1.2.7"]),
    (">1.2.x", ["1.3"], ["1.2.9"]),
    ("<=1.2.x", ["1.2.9", "1.1"], ["1.3.0"]),
    ("*", ["0", "1.2.3", "20240606", "v9"], ["latest", "1.0.0-rc1", "sha256-" + "a" * 64]),
    (">=2.0.0-rc.1", ["2.0.0-rc.1", "2.0.0-rc.2", "2.0.0-rc2", "2.0.0", "2.1.0-beta"], ["2.0.0-beta.1", "1.9"]),
    ("~2.0.0-rc.1", ["2.0.0-rc.5", "2.0.1"], ["2.1.0-rc.1", "2.0.0-beta"]),
    (">=1.0, <2.0", ["1.5"], ["2.0"]),
    (">= 1.0 < 2.0", ["1.5"], ["2.0", "0.5"]),
    (">=1, <=3, !=2", ["1", "3", "2.1"], ["2", "2.0.0", "3.0.1"]),
    (">3,<2", [], ["2", "2.5", "3"]),
    ("v1.2.x", ["1.2.1"], ["1.3"]),
]


@pytest.mark.parametrize("text,inside,outside", CASES)
def test_range_table(text, inside, outside):
    rng = parse_range(text)
    every = inside + outside
    for tag in inside:
        assert rng.contains(tag), tag
    for tag in outside:
        assert not rng.contains(tag), tag
    lo, hi = rng.bounds()
    window = [member_tag(m) for m in zrangebylex([member(t) for t in every], lo, hi)]
    assert set(inside) <= set(window)
    assert [t for t in window if rng.contains(t)] == sort_tags(inside) == range_filter(rng, every)


def test_bounds_stay_in_the_version_bucket():
    for text in ("*", "!=3"):
        assert parse_range(text).bounds() == ("(1", "(2")
    assert parse_range(">=1").bounds()[1] == "(2" and parse_range("<2").bounds()[0] == "(1"
    window = zrangebylex([member(t) for t in ("1.0", "latest", "sha256-" + "a" * 64)], *parse_range("*").bounds())
    assert [member_tag(m) for m in window] == ["1.0"]


def test_prerelease_rule_is_per_range():
    assert not parse_range(">=1.0").contains("1.1.0-rc1")
    assert parse_range(">=1.0, <3, !=2.0.0-rc.1").contains("1.1.0-rc1")   # any constraint naming one opens them
    assert parse_range(">=1.0, <3, !=2.0.0-rc.1").include_prerelease
    assert not parse_range("~1.2").include_prerelease


@pytest.mark.parametrize("text,message", [
    ("", "empty range"), ("  ", "empty range"), (",", "empty"), (">=1,,<2", "empty constraint"),
    (">=", "not a version"), (">=latest", "not a version"), ("=>1", "not a version"),
    ("1.2.3-alpine", "variant"), (">=1.*.3", "not a version"), (">*", "wildcard"),
    ("1.2.3.4.5", "not a version"), ("1 || 2", "'||'"), ("1 - 2", "not a version"),
    ("x" * (MAX_RANGE_LENGTH + 1), "longer than"), (",".join(["1"] * (MAX_CONSTRAINTS + 1)), "more than"),
    ("~>1.2", "not a version"), ("1" * 21, "not a version"),
])
def test_malformed_ranges_raise_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_range(text)


def test_non_string():
    with pytest.raises(ValueError):
        parse_range(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- brute force against a tuple model

def ref_prec(tag: str):
    """Independent precedence model: padded numbers, release above pre-release (SemVer fields), revision."""
    p = parse_tag(tag)
    nums = p.numbers + (0,) * (4 - len(p.numbers))
    pre = (1,) if not p.prerelease else (0, tuple((0, x) if isinstance(x, int) else (1, x) for x in p.prerelease))
    return nums, pre, -1 if p.revision is None else p.revision


def ref_contains(constraints, tag: str) -> bool:
    p = parse_tag(tag)
    if not p.is_version:
        return False
    if p.prerelease and not any(parse_tag(v).prerelease for _, v, _ in constraints if v):
        return False
    nums = ref_prec(tag)[0]
    for op, vtext, wild in constraints:
        if wild is not None:
            head, k = nums[:len(wild)], len(wild)
            ok = {"==": head == wild, "!=": head != wild, ">=": head >= wild, ">": head > wild,
                  "<": head < wild, "<=": head <= wild}[op] if k else True
        elif op in ("~", "^"):
            n = parse_tag(vtext).numbers
            i = (0 if len(n) == 1 else 1) if op == "~" else next((j for j, x in enumerate(n) if x), len(n) - 1)
            top = n[:i] + (n[i] + 1,)
            ok = ref_prec(tag) >= ref_prec(vtext) and nums < top + (0,) * (4 - len(top))
        else:
            a, b = ref_prec(tag), ref_prec(vtext)
            ok = {"==": a == b, "!=": a != b, ">=": a >= b, ">": a > b, "<": a < b, "<=": a <= b}[op]
        if not ok:
            return False
    return True


SMALL = st.integers(0, 3)
VERSION = st.builds(lambda v, nums, pre: v + ".".join(map(str, nums)) + pre, st.sampled_from(["", "v"]),
                    st.lists(SMALL, min_size=1, max_size=3),
                    st.sampled_from(["", "", "", "-rc.1", "-rc.2", "-beta", "rc1", "-1"]))
WILD = st.builds(lambda nums, w: ".".join(map(str, nums)) + w, st.lists(SMALL, min_size=0, max_size=2),
                 st.sampled_from([".x", ".*", ".X"]))


@st.composite
def constraints(draw):
    kind = draw(st.integers(0, 2))
    if kind == 1:
        w = draw(WILD).lstrip(".")
        nums = tuple(int(x) for x in w.split(".")[:-1] if x.isdigit())
        op = draw(st.sampled_from(["==", "!=", ">=", ">", "<", "<="] if nums else ["=="]))
        return op, None, nums, f"{op}{w}"
    v = draw(VERSION)
    op = draw(st.sampled_from(["==", "!=", ">=", ">", "<", "<=", "~", "^"]))
    return op, v, None, f"{op}{v}"


TAG = st.one_of(VERSION, VERSION.map(lambda v: v + "-alpine"), st.sampled_from(["latest", "edge", "abc1234"]))


@settings(max_examples=400)
@given(st.lists(constraints(), min_size=1, max_size=3), st.lists(TAG, max_size=12), st.sampled_from([",", ", ", " "]))
def test_ranges_against_brute_force(cons, tags, sep):
    rng = parse_range(sep.join(c[3] for c in cons))
    model = [(op, v, w) for op, v, w, _ in cons]
    for tag in tags:
        assert rng.contains(tag) == ref_contains(model, tag), tag
    window = zrangebylex([member(t) for t in tags], *rng.bounds())
    got = [member_tag(m) for m in window if rng.contains(member_tag(m))]
    assert got == sort_tags({t for t in tags if ref_contains(model, t)})
