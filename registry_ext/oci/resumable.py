"""SHA-256 / SHA-512 whose state can be saved and resumed in another process or host.

An upload session's chunks may arrive at different workers and hosts; with
the hash state saved beside the session after each chunk, finishing a
10 GiB upload hashes only its last chunk instead of reading 10 GiB back.
``hashlib`` cannot export its state, and the one library that could
(``rehash``) refuses OpenSSL 3. OpenSSL's low-level ``SHA256_*`` and
``SHA512_*`` functions (deprecated since 3.0, still exported by
libcrypto.so.3, the library Python's own hashlib uses here) keep their whole
state in a plain struct, ``SHA256_CTX`` (112 bytes) or ``SHA512_CTX`` (216),
so the state *is* those bytes. A saved state names the OpenSSL version and
the struct size; a state from another build is refused (``StateMismatch``)
and the caller re-hashes the data instead (slower, still correct).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

_CTX_SIZE = {"sha256": 112, "sha512": 216}
ALGORITHMS = frozenset(_CTX_SIZE)
_DIGEST_SIZE = {"sha256": 32, "sha512": 64}
_PREFIX = {"sha256": "SHA256", "sha512": "SHA512"}


class Unavailable(Exception):
    """libcrypto's low-level hash functions cannot be used on this machine."""


class StateMismatch(Exception):
    """A saved state was made by another libcrypto build or algorithm."""


@functools.cache
def _lib():
    name = ctypes.util.find_library("crypto")
    if name is None:
        raise Unavailable("libcrypto not found")
    try:
        lib = ctypes.CDLL(name)
        for prefix in _PREFIX.values():
            for fn in ("Init", "Update", "Final"):
                getattr(lib, f"{prefix}_{fn}").restype = ctypes.c_int
        lib.OpenSSL_version.restype = ctypes.c_char_p
        version = lib.OpenSSL_version(0).decode()
    except (OSError, AttributeError) as exc:
        raise Unavailable(f"libcrypto has no low-level SHA functions: {exc}") from None
    return lib, version


def available() -> bool:
    try:
        _lib()
        return True
    except Unavailable:
        return False


class ResumableHash:
    """A running SHA-256 or SHA-512: ``update``, ``state`` (bytes), ``resume``, ``hexdigest``."""

    def __init__(self, algorithm: str, _ctx: ctypes.Array | None = None):
        if algorithm not in _CTX_SIZE:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        self.algorithm = algorithm
        self.lib, self.version = _lib()
        self._fn = _PREFIX[algorithm]
        if _ctx is None:
            _ctx = ctypes.create_string_buffer(_CTX_SIZE[algorithm])
            getattr(self.lib, f"{self._fn}_Init")(_ctx)
        self._ctx = _ctx

    def update(self, data: bytes | memoryview) -> None:
        if data:
            buf = (ctypes.c_char * len(data)).from_buffer_copy(data) if isinstance(data, memoryview) else data
            getattr(self.lib, f"{self._fn}_Update")(self._ctx, buf, ctypes.c_size_t(len(data)))

    def hexdigest(self) -> str:
        """The digest of everything so far (the running state is left as it was)."""
        ctx = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(_DIGEST_SIZE[self.algorithm])
        getattr(self.lib, f"{self._fn}_Final")(out, ctx)
        return out.raw.hex()

    def state(self) -> str:
        """The running state as text: ``<algorithm>:<openssl version>:<hex of the struct>``."""
        return f"{self.algorithm}:{self.version}:{self._ctx.raw.hex()}"

    @classmethod
    def resume(cls, saved: str) -> "ResumableHash":
        """A hash continuing from ``state()``. Raises StateMismatch, Unavailable."""
        algorithm, _, rest = saved.partition(":")
        version, _, raw = rest.rpartition(":")
        _lib_handle, current = _lib()
        if algorithm not in _CTX_SIZE or version != current:
            raise StateMismatch(f"hash state from {version!r} ({algorithm}), this is {current!r}")
        try:
            data = bytes.fromhex(raw)
        except ValueError:
            raise StateMismatch("hash state is not hex") from None
        if len(data) != _CTX_SIZE[algorithm]:
            raise StateMismatch("hash state has the wrong size")
        return cls(algorithm, ctypes.create_string_buffer(data, len(data)))
