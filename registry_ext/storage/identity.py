"""The registry's identity and signing key, made once and kept with the data.

``<root>/identity`` holds ``{"id": <16 hex>, "key": <64 hex>}``: ``id`` names
this registry in the update feed's cursors (a cursor from another registry
is recognised as such), ``key`` signs cursors and long-poll hand-offs
(HMAC-SHA256). It lives on storage, not in Redis, so a flushed or replaced
Redis does not change who the registry is; several hosts sharing one
storage root are one registry. The file is created with mode 0600 by the
first process that needs it: written to a temp file, then hard-linked into
place, so concurrent starters agree on the first one written.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile

import orjson

from registry_ext.storage.atomic import fsync_dir
from registry_ext.storage.layout import Layout


@dataclasses.dataclass(frozen=True)
class Identity:
    id: bytes   # 8 bytes
    key: bytes  # 32 bytes


def load_identity(layout: Layout, create: bool = True) -> Identity:
    """The registry's identity, created on first use (unless ``create`` is false).

    Raises:
        FileNotFoundError: there is none yet and ``create`` is false.
    """
    path = layout.identity
    try:
        return parse_identity(path.read_bytes())
    except FileNotFoundError:
        if not create:
            raise
    data = orjson.dumps({"id": secrets.token_hex(8), "key": secrets.token_hex(32)})
    layout.tmp.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=layout.tmp)
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp: mode 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            fsync_dir(path.parent)
        except FileExistsError:
            pass  # another process won: use its identity
    finally:
        os.unlink(tmp)
    return parse_identity(path.read_bytes())


def parse_identity(raw: bytes) -> Identity:
    """The identity in a stored record (``{"id", "key"}`` in hex)."""
    doc = orjson.loads(raw)
    return Identity(bytes.fromhex(doc["id"]), bytes.fromhex(doc["key"]))
