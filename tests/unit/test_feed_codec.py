"""Feed cursors and hand-off tokens: round trips, and every way a bad one is refused."""
import base64
import time

import pytest

from registry_ext.services.feed_codec import (CursorError, Position, decode_cursor, encode_cursor, sign_token,
                                              verify_token)
from registry_ext.storage.identity import Identity

ME = Identity(bytes.fromhex("0011223344556677"), b"k" * 32)
OTHER = Identity(bytes.fromhex("8899aabbccddeeff"), b"q" * 32)
POS = Position("0123456789abcdef", "1795341743175-3", 42)


def test_cursor_round_trip_is_short_and_url_safe():
    cursor = encode_cursor(ME, POS)
    assert decode_cursor(ME, cursor) == POS
    assert len(cursor) <= 80 and all(c.isalnum() or c in "-_" for c in cursor)


def test_cursor_of_another_registry_is_named_as_such():
    with pytest.raises(CursorError) as err:
        decode_cursor(ME, encode_cursor(OTHER, POS))
    assert err.value.reason == "cursor-foreign"


def test_a_registry_with_our_id_but_another_key_is_refused_as_altered():
    with pytest.raises(CursorError) as err:
        decode_cursor(ME, encode_cursor(Identity(ME.id, b"x" * 32), POS))
    assert err.value.reason == "cursor-invalid"


@pytest.mark.parametrize("flip", range(1, 49))
def test_every_altered_byte_is_detected(flip):
    raw = bytearray(base64.urlsafe_b64decode(encode_cursor(ME, POS) + "=="))
    raw[flip] ^= 0x01
    token = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(CursorError) as err:
        decode_cursor(ME, token)
    assert err.value.reason == ("cursor-foreign" if 1 <= flip <= 8 else "cursor-invalid")


@pytest.mark.parametrize("token", ["", "x", "!!!!", "a" * 201, "AAAA", encode_cursor(ME, POS)[:-2],
                                   encode_cursor(ME, POS) + "AA", "eyJ2IjoxfQ"])
def test_garbage_is_invalid(token):
    with pytest.raises(CursorError) as err:
        decode_cursor(ME, token)
    assert err.value.reason == "cursor-invalid"


def test_token_round_trip_and_refusals():
    token = sign_token(ME, {"a": [1, "b"]}, 60)
    assert verify_token(ME, token)["a"] == [1, "b"]
    assert verify_token(OTHER, token) is None
    body, mac = token.split(".")
    assert verify_token(ME, body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac) is None
    assert verify_token(ME, sign_token(ME, {}, -1)) is None
    for bad in ("", ".", "a.b.c", "x" * 9000):
        assert verify_token(ME, bad) is None


def test_token_expiry_is_a_float_deadline():
    doc = verify_token(ME, sign_token(ME, {}, 5))
    assert time.time() < doc["exp"] <= time.time() + 5
