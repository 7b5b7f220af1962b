"""Feed cursors and long-poll hand-off tokens: opaque, signed, bound to this registry (pure).

A cursor names a position in the feed: the epoch of the stream, an entry
id and that entry's sequence number. It is 49 bytes, URL-safe base64::

    version (1) | registry id (8) | epoch (8) | id ms (8) | id seq (4) | n (8) | HMAC-SHA256 (12)

The registry id comes first so a cursor of another registry is told
apart from a forged or damaged one (whose MAC fails). The MAC uses the
registry's key (storage/identity.py): nobody can make a cursor this
registry accepts without it, so a valid MAC means the fields were issued
here and need no further sanity checks.

A hand-off token carries a long-poll from a worker to the waiter process
(behind nginx, services/feed_wait.py and registry_ext/waiter/): a small
JSON document, URL-safe base64, then ``.`` and its MAC. It expires.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import struct
import time
from typing import Any

import orjson

from registry_ext.storage.identity import Identity

VERSION = 1
_LAYOUT = struct.Struct(">B8s8sQIQ")
_MAC_BYTES = 12
CURSOR_MAX = 200  # characters; a longer value is refused before any decoding
TOKEN_MAX = 8192


class CursorError(ValueError):
    """A cursor that cannot be used; ``reason`` is ``cursor-invalid`` or ``cursor-foreign``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Position:
    epoch: str   # 16 hex digits
    id: str      # stream entry id "<ms>-<seq>"
    n: int       # the entry's sequence number in its epoch


def encode_cursor(identity: Identity, position: Position) -> str:
    ms, seq = (int(part) for part in position.id.split("-"))
    body = _LAYOUT.pack(VERSION, identity.id, bytes.fromhex(position.epoch), ms, seq, position.n)
    mac = hmac.new(identity.key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def decode_cursor(identity: Identity, token: str) -> Position:
    """The position a cursor names.

    Raises:
        CursorError: malformed, of another version, of another registry, or not signed by this one.
    """
    if not token or len(token) > CURSOR_MAX:
        raise CursorError("cursor-invalid", "cursor is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("cursor-invalid", "cursor is not one this registry issued (not base64)") from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES or raw[0] != VERSION:
        raise CursorError("cursor-invalid", "cursor is not one this registry issued (wrong length or version)")
    body, mac = raw[:_LAYOUT.size], raw[_LAYOUT.size:]
    _version, registry, epoch, ms, seq, n = _LAYOUT.unpack(body)
    if registry != identity.id:
        raise CursorError("cursor-foreign", "cursor was issued by another registry")
    if not hmac.compare_digest(mac, hmac.new(identity.key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
        raise CursorError("cursor-invalid", "cursor was altered (signature does not match)")
    return Position(epoch.hex(), f"{ms}-{seq}", n)


def sign_token(identity: Identity, doc: dict[str, Any], ttl_seconds: float) -> str:
    """A hand-off token for ``doc``, valid for ``ttl_seconds``."""
    body = base64.urlsafe_b64encode(orjson.dumps(dict(doc, exp=time.time() + ttl_seconds))).decode().rstrip("=")
    return f"{body}.{_token_mac(identity, body)}"


def verify_token(identity: Identity, token: str) -> dict[str, Any] | None:
    """The document of a valid, unexpired token; None for anything else."""
    if not token or len(token) > TOKEN_MAX or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _token_mac(identity, body)):
        return None
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("exp"), float) or doc["exp"] < time.time():
        return None
    return doc


def _token_mac(identity: Identity, body: str) -> str:
    mac = hmac.new(identity.key, b"token:" + body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")
