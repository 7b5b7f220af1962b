"""Pure parsing: digests, names, tags, ranges."""
import io

import pytest
from hypothesis import given, strategies as st

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci.digest import digest_bytes, digest_file, parse_digest
from registry_ext.oci.ranges import RangeError, parse_content_range, parse_range
from registry_ext.oci.reference import NAME_RE, is_valid_tag, is_valid_upload_id, validate_name

GOOD = "sha256:" + "a" * 64


@pytest.mark.parametrize("value", [
    GOOD, "sha512:" + "0" * 128,
])
def test_valid_digests(value):
    assert str(parse_digest(value)) == value


@pytest.mark.parametrize("value", [
    None, "", "sha256", "sha256:", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32,
    "sha256:../../etc", "sha256:" + "g" * 64, "x" * 300, "sha256:" + "a" * 64 + "\n",
])
def test_invalid_digests_are_digest_invalid(value):
    with pytest.raises(RegistryError) as info:
        parse_digest(value)
    assert info.value.code is ErrorCode.DIGEST_INVALID


@given(st.text(max_size=80))
def test_digest_parser_never_crashes(value):
    try:
        parse_digest(value)
    except RegistryError as exc:
        assert exc.code is ErrorCode.DIGEST_INVALID


def test_digest_of_stream_matches_bytes():
    data = b"hello" * 100000
    assert digest_file(io.BytesIO(data)) == (digest_bytes(data), len(data))


@pytest.mark.parametrize("name", ["a", "library/nginx", "a.b_c__d-e--f/g0", "a/b/c/d"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "a/../b", "..", "a..b", "a_", "-a", "a/_b",
                                  "a" * 256, "a b", "a:b", "a/B"])
def test_invalid_names(name):
    with pytest.raises(RegistryError) as info:
        validate_name(name)
    assert info.value.code is ErrorCode.NAME_INVALID


@given(st.from_regex(NAME_RE, fullmatch=True).filter(lambda n: len(n) <= 255))
def test_every_grammar_name_is_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("tag, ok", [
    ("latest", True), ("1.2.3-alpine", True), ("_x", True), ("a" * 128, True), ("a" * 129, False),
    (".hidden", False), ("-x", False), ("a+b", False), ("", False), ("a/b", False), ("..", False),
])
def test_tags(tag, ok):
    assert is_valid_tag(tag) is ok


def test_upload_ids_are_32_hex():
    assert is_valid_upload_id("0" * 32)
    assert not is_valid_upload_id("../" + "0" * 29)
    assert not is_valid_upload_id("0" * 33)


@pytest.mark.parametrize("header, expected", [
    ("0-99", (0, 100)), ("bytes 5-5", (5, 1)), ("bytes=10-19/100", (10, 10)), ("100-199/*", (100, 100)),
])
def test_content_range(header, expected):
    assert parse_content_range(header) == expected


@pytest.mark.parametrize("header", ["", "abc", "5-4", "-1-3", "0-", "bytes 0-1-2", "1" * 25 + "-2"])
def test_bad_content_range(header):
    with pytest.raises(RangeError):
        parse_content_range(header)


@pytest.mark.parametrize("header, size, expected", [
    (None, 10, None), ("bytes=0-4", 10, (0, 4)), ("bytes=5-", 10, (5, 9)), ("bytes=-3", 10, (7, 9)),
    ("bytes=2-100", 10, (2, 9)), ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None), ("bytes=-20", 10, (0, 9)),
    # as nginx: any case, spaces around numbers, leading zeros, empty ranges skipped, an empty blob whole
    ("BYTES=1-2", 10, (1, 2)), ("bytes= 1 - 2 ", 10, (1, 2)), ("bytes=0001-0002", 10, (1, 2)),
    ("bytes=1-2,7-3", 10, (1, 2)), ("bytes=7-3,1-2", 10, (1, 2)), ("bytes=0-", 0, None), ("bytes=-5", 0, None),
    ("bytes=", 10, None), ("bytes", 10, None), ("bytes=0-0,-0", 10, (0, 0)),
])
def test_download_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header, size", [
    ("bytes=10-", 10), ("bytes=5-2", 10), ("bytes=-0", 10), ("bytes=abc", 10), ("bytes=-", 10), ("bytes=1-2x", 10),
    ("bytes=1-2,x", 10), ("bytes=\t1-2", 10), ("bytes=9223372036854775808-", 10), ("bytes=1-" + "9" * 5000, 10),
    ("bytes=\uff11-2", 10), ("bytes=1-2;", 10), ("bytes=,1-2", 10),
])
def test_unsatisfiable_range(header, size):
    with pytest.raises(RangeError):
        parse_range(header, size)
