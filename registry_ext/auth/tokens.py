"""Bearer tokens: signing our own (``/auth/token``) and verifying ours and trusted issuers'.

Tokens are JWTs as in the Docker token spec: ``iss``, ``sub``, ``aud``
(the service), ``exp``, ``nbf``, ``iat``, a unique ``jti`` and ``access``
(``[{"type", "name", "actions"}]``). Only RS256 and ES256 are accepted, each
only with a key of its own type, so ``alg: none`` and HS256 signed with a
public key are refused (PyJWT checks the algorithm against the key).

The signing key is a PEM file: configured, or generated at first start
(EC P-256, ES256) at ``<storage.root>/auth/token-signing-key.pem``, mode
0600. The first process to create it wins (hard link of a finished file);
every other worker and host sharing the storage root reads the same key.

A verified token is remembered per process (keyed by its SHA-256, at most
``CACHE_SIZE``, until it expires), so a request with a known token costs a
hash and a dictionary look-up, not a signature check.
"""
from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from registry_ext.auth.rules import ACTIONS
from registry_ext.auth.watch import WatchedFile

CACHE_SIZE = 4096
MAX_TOKEN_BYTES = 8192
MAX_ACCESS_ENTRIES = 100


class TokenInvalid(Exception):
    """The token is malformed, expired, not yet valid, for another audience or badly signed."""


@dataclasses.dataclass(frozen=True)
class Grant:
    """What a verified token allows."""

    subject: str | None  # None: an anonymous token
    issuer: str
    own: bool  # issued by this registry (its subject is one of our users)
    repositories: dict[str, frozenset[str]]
    catalog: bool
    expires: float


def algorithm_for(key) -> str:
    """ES256 for an EC P-256 key, RS256 for RSA of 2048 bits or more.

    Raises:
        ValueError: any other key.
    """
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name != "secp256r1":
            raise ValueError("EC keys must use the P-256 curve (ES256)")
        return "ES256"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < 2048:
            raise ValueError("RSA keys must have at least 2048 bits")
        return "RS256"
    raise ValueError("only EC P-256 (ES256) and RSA (RS256) keys are supported")


def key_id(public_key) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the ``kid`` of our tokens."""
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[algorithm_for(public_key)].to_jwk(public_key))
    members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def load_or_create_key(path: Path):
    """The private key at ``path``; a new EC P-256 key is written there (0600) when none exists."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process was first: its key is used
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    algorithm_for(key)
    return key


class TokenIssuer:
    """Signs short-lived tokens for our own users (``/auth/token``)."""

    def __init__(self, private_key, issuer: str, service: str, ttl: int):
        self.key = private_key
        self.algorithm = algorithm_for(private_key)
        self.kid = key_id(private_key.public_key())
        self.issuer, self.service, self.ttl = issuer, service, ttl

    def issue(self, subject: str | None, access: list[dict]) -> tuple[str, int, int]:
        """(token, expires_in, issued_at) for ``subject`` (None: anonymous)."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject or "", "aud": self.service, "iat": now, "nbf": now,
                  "exp": now + self.ttl, "jti": secrets.token_urlsafe(16), "access": access}
        token = jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid})
        return token, self.ttl, now


@dataclasses.dataclass(frozen=True)
class TrustedKeys:
    """The keys of one issuer: by ``kid``, and the key to use when a token names none."""

    by_kid: dict[str, tuple[object, str]]
    default: tuple[object, str] | None


def parse_public_key(data: bytes) -> TrustedKeys:
    key = serialization.load_pem_public_key(data)
    entry = (key, algorithm_for(key))
    return TrustedKeys({key_id(key): entry}, entry)


def parse_jwks(data: bytes) -> TrustedKeys:
    try:
        keyset = jwt.PyJWKSet.from_json(data.decode())
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a usable JWKS: {exc}") from None
    by_kid = {}
    for jwk in keyset.keys:
        entry = (jwk.key, algorithm_for(jwk.key))
        by_kid[jwk.key_id or key_id(jwk.key)] = entry
    default = next(iter(by_kid.values())) if len(by_kid) == 1 else None
    return TrustedKeys(by_kid, default)


class TokenVerifier:
    """Checks tokens of our own issuer and of the configured trusted issuers."""

    def __init__(self, service: str, skew: int, own: TokenIssuer | None, trusted: dict[str, WatchedFile]):
        self.service, self.skew, self.own = service, skew, own
        self.trusted = trusted  # issuer -> WatchedFile[TrustedKeys]
        self._cache: collections.OrderedDict[bytes, Grant] = collections.OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Grant:
        """Raises: TokenInvalid."""
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        with self._lock:
            grant = self._cache.get(digest)
            if grant is not None:
                if grant.expires + self.skew > now:
                    self._cache.move_to_end(digest)
                    return grant
                del self._cache[digest]
        grant = self._decode(token)
        with self._lock:
            self._cache[digest] = grant
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return grant

    def _decode(self, token: str) -> Grant:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenInvalid("token too long")
        try:
            header = jwt.get_unverified_header(token)
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            if not isinstance(issuer, str):
                raise TokenInvalid("no issuer")
            key, algorithm, own = self._key_for(issuer, header.get("kid"))
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=self.service, issuer=issuer,
                                leeway=self.skew, options={"require": ["exp", "iss", "aud"]})
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenInvalid(_reason(exc)) from None
        repositories, catalog = _access(claims.get("access", []))
        subject = claims.get("sub") or None
        if subject is not None and not isinstance(subject, str):
            raise TokenInvalid("sub must be a string")
        return Grant(subject, issuer, own, repositories, catalog, float(claims["exp"]))

    def _key_for(self, issuer: str, kid: Any) -> tuple[Any, str, bool]:
        """The verification key and algorithm for a token of ``issuer``, and whether that issuer is us."""
        if self.own is not None and issuer == self.own.issuer:
            if kid is not None and kid != self.own.kid:
                raise TokenInvalid("unknown key id")
            return self.own.key.public_key(), self.own.algorithm, True
        watched = self.trusted.get(issuer)
        if watched is None:
            raise TokenInvalid("untrusted issuer")
        keys = watched.get()
        entry = keys.by_kid.get(kid) or keys.default  # one PEM key: any kid; the signature decides
        if entry is None:
            raise TokenInvalid("unknown key id")
        return entry[0], entry[1], False


_REASONS = ((jwt.ExpiredSignatureError, "token expired"), (jwt.ImmatureSignatureError, "token not yet valid"),
            (jwt.InvalidAudienceError, "token for another audience"), (jwt.InvalidIssuerError, "wrong issuer"),
            (jwt.InvalidAlgorithmError, "algorithm not allowed"), (jwt.InvalidSignatureError, "bad signature"),
            (jwt.MissingRequiredClaimError, "a required claim is missing"))


def _reason(exc: Exception) -> str:
    """A fixed phrase per failure: PyJWT's own messages may quote parts of the token."""
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "malformed token"


def _access(entries) -> tuple[dict[str, frozenset[str]], bool]:
    """The ``access`` claim as {repository: actions} and the catalog flag."""
    if not isinstance(entries, list) or len(entries) > MAX_ACCESS_ENTRIES:
        raise TokenInvalid("access must be a list of at most 100 entries")
    repositories: dict[str, frozenset[str]] = {}
    catalog = False
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("actions"), list):
            raise TokenInvalid("malformed access entry")
        actions = {a for a in entry["actions"] if isinstance(a, str)}
        if "*" in actions:
            actions |= ACTIONS
        if entry.get("type") == "repository" and isinstance(entry.get("name"), str):
            name = entry["name"]
            repositories[name] = repositories.get(name, frozenset()) | (actions & ACTIONS)
        elif entry.get("type") == "registry" and entry.get("name") == "catalog":
            catalog = catalog or bool(actions)
    return repositories, catalog
