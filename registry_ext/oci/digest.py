"""Digests: parsing, validation and hashing (pure, no I/O beyond a given stream).

A digest is ``<algorithm>:<encoded>`` (OCI image-spec "Digests"). We accept
the registered algorithms sha256 and sha512 with lower-case hex of the
exact length; anything else is DIGEST_INVALID.
"""
from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, NamedTuple

from registry_ext.errors import ErrorCode, RegistryError

ALGORITHMS = {"sha256": 64, "sha512": 128}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class Digest(NamedTuple):
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(value: str | None) -> Digest:
    """Parse and validate a digest string.

    Raises:
        RegistryError(DIGEST_INVALID): malformed, or an unsupported algorithm.
    """
    if not value or len(value) > 256 or not _GRAMMAR.match(value):
        raise RegistryError(ErrorCode.DIGEST_INVALID, {"digest": (value or "")[:256]},
                            message="invalid digest format")
    algorithm, encoded = value.split(":", 1)
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise RegistryError(ErrorCode.DIGEST_INVALID, {"digest": value},
                            message=f"unsupported digest algorithm {algorithm!r}")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise RegistryError(ErrorCode.DIGEST_INVALID, {"digest": value},
                            message=f"invalid {algorithm} digest")
    return Digest(algorithm, encoded)


def is_digest(value: str) -> bool:
    """True when ``value`` looks like a digest (has a colon): tags never do."""
    return ":" in value


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    """Digest of in-memory bytes."""
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


def digest_file(stream: BinaryIO, algorithm: str = "sha256", bufsize: int = 1 << 20) -> tuple[Digest, int]:
    """Digest and length of a stream read to its end."""
    hasher = hashlib.new(algorithm)
    size = 0
    while chunk := stream.read(bufsize):
        hasher.update(chunk)
        size += len(chunk)
    return Digest(algorithm, hasher.hexdigest()), size
