"""Hypothesis fuzzing of the text parsers every request goes through.

Each parser is fed arbitrary text and text built from its own alphabet (so
the examples reach deep into the grammar), and may only succeed or raise
its documented error: RegistryError with the right OCI code, RangeError,
TokenError, FilterError or ValueError. ``tests/unit/test_oci_parsing.py``
already fuzzes ``parse_digest`` on text and names from the grammar, and
``tests/unit/test_versions.py`` ``parse_tag`` on text; this adds the rest.

Text here is what an HTTP request can carry once decoded: Werkzeug decodes
paths and queries as UTF-8 with replacement, so lone surrogates never
reach the parsers (``test_fuzz_listings.py`` checks that through the app).
"""
from __future__ import annotations

import base64

import orjson
from hypothesis import example, given, strategies as st

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import pagination
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.ranges import RangeError, parse_content_range, parse_range
from registry_ext.oci.reference import NAME_MAX, is_valid_tag, is_valid_upload_id, validate_name, validate_tag
from registry_ext.oci.tag_filter import FilterError, build_filter
from registry_ext.oci.version_ranges import parse_range as parse_version_range
from registry_ext.oci.versions import (after_bound, before_bound, family_bounds, kind_bounds, member, member_tag,
                                       order_key, parse_tag)
from registry_ext.services.history import _parse_cursor, parse_timestamp

from tests.support.fuzz_settings import fuzz_settings

FAST = fuzz_settings(250)
HOSTILE = st.sampled_from(["..", "../", "..%2f", "%2e%2e/", "a/../b", "\x00", "\\", "/etc/passwd", "a" * 300,
                           "ａ", "ſ", "K", "\u212a", "\n", "a\nb", "sha256:" + "a" * 64 + "\n"])
TEXT = st.one_of(st.text(max_size=60), HOSTILE)


def alphabet_text(chars: str, max_size: int = 40):
    return st.text(alphabet=chars, max_size=max_size)


VERSIONISH = alphabet_text("0123456789.-_vVrcalphbetRCxX*+u", 24)


@FAST
@given(st.one_of(TEXT, alphabet_text("abz09._-/", 80), alphabet_text("ab/.", 300).map(lambda t: "a" * 240 + t)))
@example("a" * NAME_MAX)
@example("a" * (NAME_MAX + 1))
def test_names_are_valid_or_name_invalid(name):
    try:
        assert validate_name(name) == name
    except RegistryError as err:
        assert err.code is ErrorCode.NAME_INVALID
        assert len(err.detail["name"]) <= NAME_MAX + 1  # details never echo unbounded input
        return
    assert ".." not in name.split("/") and "\\" not in name and "\x00" not in name and not name.startswith("/")


@FAST
@given(st.one_of(TEXT, alphabet_text("aZ09._-:/", 140)))
def test_tags_are_valid_or_manifest_invalid(tag):
    try:
        validate_tag(tag)
    except RegistryError as err:
        assert err.code is ErrorCode.MANIFEST_INVALID and not is_valid_tag(tag)
        return
    assert "/" not in tag and not tag.startswith(".") and len(tag) <= 128


@FAST
@given(st.one_of(TEXT, alphabet_text("0123456789abcdefABCDEF./-", 40)))
def test_upload_ids_never_name_a_path(upload_id):
    if is_valid_upload_id(upload_id):
        assert len(upload_id) == 32 and set(upload_id) <= set("0123456789abcdef")


@FAST
@given(st.one_of(TEXT, alphabet_text("sha256:0123456789abcdefA+._-=", 80)))
def test_digests_from_their_alphabet(value):
    try:
        parsed = parse_digest(value)
    except RegistryError as err:
        assert err.code is ErrorCode.DIGEST_INVALID
        return
    assert str(parsed) == value and "/" not in value


@FAST
@given(st.one_of(TEXT, alphabet_text("bytes =0123456789-/*,", 40)))
@example("9" * 19 + "-" + "9" * 19)
def test_content_range_parses_or_range_error(value):
    try:
        start, length = parse_content_range(value)
    except RangeError:
        return
    assert start >= 0 and length >= 1


@FAST
@given(st.one_of(st.none(), TEXT, alphabet_text("bytes =0123456789-,", 40)), st.integers(0, 2**40))
def test_download_range_is_within_the_blob(value, size):
    try:
        wanted = parse_range(value, size)
    except RangeError:
        return
    if wanted is not None:
        first, last = wanted
        assert 0 <= first <= last < size


@FAST
@given(st.one_of(TEXT, VERSIONISH))
def test_version_keys_and_bounds_never_raise(tag):
    """The sort keys and lex bounds built from any `last` or tag stay printable and round-trip."""
    version = parse_tag(tag)
    assert all(0x21 <= ord(c) <= 0x7E for c in order_key(tag))
    assert member_tag(member(tag)) == tag
    assert after_bound(tag).startswith("(") and before_bound(tag).startswith("(")
    bounds = family_bounds(tag)
    assert (bounds is None) == (not version.is_version)
    if bounds is not None:
        assert bounds.accepts(tag) is False and bounds.max == kind_bounds("version")[1]


@FAST
@given(st.one_of(TEXT, alphabet_text("<>=!~^0123456789.xX* ,-_vrcalpha|", 60)))
@example("~" + "9" * 20)
@example("^0.0." + "9" * 20)
@example(">=1," * 11)
def test_version_ranges_parse_or_value_error(text):
    try:
        rng = parse_version_range(text)
    except ValueError:
        return
    low, high = rng.bounds()
    assert low.startswith("(") and high.startswith("(")
    rng.contains("1.2.3")


@FAST
@given(st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT, alphabet_text("*?[]!^a-z", 30)),
       st.one_of(st.none(), TEXT, alphabet_text("()[]{}*+?|^$\\.a1,", 30)),
       st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT, st.sampled_from(["release,signature", " release"])),
       st.one_of(st.none(), TEXT))
@example(None, None, "a{1000}{1000}", None, None, None)
@example(None, None, "(?P<x>a)(?P=x)", None, None, None)
@example(None, "[", None, None, None, None)
def test_tag_filters_build_or_filter_error(prefix, glob, regex, version_range, kind, variant):
    try:
        flt = build_filter(prefix, glob, regex, version_range, kind, variant)
    except FilterError as err:
        assert err.parameter in ("prefix", "glob", "regex", "range", "kind", "variant")
        return
    for tag in ("latest", "1.2.3", "1.2.3-alpine", "sha256-" + "a" * 64 + ".sig", prefix or "x"):
        flt.matches(tag)


def _token(payload) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=10),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                   max_size=3), max_leaves=6)


@FAST
@given(st.one_of(TEXT, alphabet_text("ABCabc0123456789-_=", 80),
                 st.builds(lambda p: _token({"v": 1, **p}), st.dictionaries(st.sampled_from("sdpm"), JSONISH)),
                 st.builds(_token, JSONISH)))
def test_continuation_tokens_decode_or_token_error(token):
    try:
        payload = pagination.decode(token)
    except pagination.TokenError:
        return
    assert isinstance(payload, dict) and payload["v"] == pagination.VERSION


@FAST
@given(st.one_of(TEXT, alphabet_text("0123456789-:.TtZz+", 40),
                 st.datetimes().map(lambda d: d.isoformat() + "Z")))
@example("0000-01-01T00:00:00Z")
@example("9999-12-31T23:59:60.999999999-23:59")
@example("2026-02-30T00:00:00Z")
def test_history_timestamps_parse_or_unsupported(value):
    try:
        bounds = parse_timestamp("since", value)
    except RegistryError as err:
        assert err.code is ErrorCode.UNSUPPORTED and err.status == 400
        return
    assert bounds is None or bounds[0] <= bounds[1]


@FAST
@given(st.one_of(TEXT, alphabet_text("-0123456789.", 45)))
def test_history_cursors_parse_or_unsupported(value):
    try:
        _parse_cursor(value)
    except RegistryError as err:
        assert err.code is ErrorCode.UNSUPPORTED
