"""Opaque continuation tokens for the extension listings (pure).

A token is URL-safe base64 of a small JSON object with a version number.
It records a *position* (a value in the listing's order), never an offset,
so a tag deleted between pages cannot shift the next page. Tokens are not
secret: a forged one only names another position, which is validated like
any other input.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

VERSION = 1
MAX_TOKEN = 1024


class TokenError(ValueError):
    """A continuation token that cannot be used."""


def encode(payload: dict[str, Any]) -> str:
    raw = orjson.dumps({"v": VERSION, **payload})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> dict[str, Any]:
    """Decode a token; raise TokenError for anything malformed or of another version."""
    if not token or len(token) > MAX_TOKEN:
        raise TokenError("continuation token is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise TokenError("continuation token is malformed") from None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise TokenError("continuation token is of an unknown version")
    return payload
