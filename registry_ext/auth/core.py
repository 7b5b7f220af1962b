"""Who is calling, and what may they do: credentials, users, rules, tokens and the throttle together.

No Flask here: auth/gate.py turns the exceptions below into OCI errors with
the right challenge. A caller is anonymous (no ``Authorization``), a user
proven by HTTP Basic, or the holder of a verified bearer token.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from registry_ext.auth import audit
from registry_ext.auth.rules import NOTHING, Rules, Who, compile_rules, parse_who
from registry_ext.auth.watch import WatchedFile
from registry_ext.config import AuthSettings, ConfigError, Settings
from registry_ext.index.throttle import LoginThrottle

if TYPE_CHECKING:  # tokens (JWT, cryptography) and users (bcrypt) load only when configured: issue #11 item 2
    from registry_ext.auth.tokens import Grant, TokenIssuer, TokenVerifier
    from registry_ext.auth.users import Users

log = logging.getLogger(__name__)
_EMPTY_BASIC = base64.b64encode(b":").decode()
MAX_HEADER = 8192  # nginx's largest header line (deploy/nginx.conf); a longer one is a 400


class Unauthenticated(Exception):
    """No usable credentials: 401. ``reason`` is safe to show (never a password or token)."""

    def __init__(self, reason: str, token: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.token = token  # a bearer token was presented (challenge error="invalid_token")


class Throttled(Exception):
    """Too many failed logins from this address or for this user: 429."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class HeaderTooLarge(Exception):
    """An ``Authorization`` header longer than ``MAX_HEADER``: 400."""


@dataclasses.dataclass(frozen=True)
class Caller:
    user: str | None  # None: anonymous (also an anonymous token)
    scheme: str       # "anonymous", "basic" or "bearer"
    grant: Grant | None = None

    @property
    def authenticated(self) -> bool:
        return self.scheme != "anonymous"


ANONYMOUS = Caller(None, "anonymous")


class Auth:
    """Built once per app from ``[auth]`` (see :func:`build_auth`)."""

    def __init__(self, settings: AuthSettings, rules: Rules, users: Users | None,
                 issuer: TokenIssuer | None, verifier: TokenVerifier | None, throttle: LoginThrottle | None):
        self.settings = settings
        self.rules = rules
        self.users = users
        self.issuer = issuer
        self.verifier = verifier
        self.throttle = throttle
        groups = settings.groups
        self.catalog_who = parse_who(settings.catalog, "auth.catalog", groups)
        self.ops_who = {"metrics": parse_who(settings.metrics, "auth.metrics", groups),
                        "readyz": parse_who(settings.readyz, "auth.readyz", groups)}

    # -- who is calling --------------------------------------------------------------------------
    def authenticate(self, header: str | None, address: str, *, basic: bool, bearer: bool) -> Caller:
        """The caller behind an ``Authorization`` header; ``basic``/``bearer``: the schemes accepted here.

        Raises:
            Unauthenticated, Throttled, HeaderTooLarge
        """
        if not header:
            return ANONYMOUS
        if len(header) > MAX_HEADER:
            raise HeaderTooLarge()
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and basic and self.users is not None:
            if value.strip() == _EMPTY_BASIC:
                # NOTE(containers/image): skopeo, podman and buildah without credentials answer a Basic
                # challenge with an empty user and password (`Basic Og==`); that is an anonymous request.
                return ANONYMOUS
            user, password = parse_basic(value.strip())
            self.login(user, password, address)
            return Caller(user, "basic")
        if scheme == "bearer" and bearer and self.verifier is not None:
            from registry_ext.auth.tokens import TokenInvalid

            try:
                grant = self.verifier.verify(value.strip())
            except TokenInvalid as exc:
                raise Unauthenticated(f"invalid token: {exc}", token=True) from None
            return Caller(grant.subject, "bearer", grant)
        raise Unauthenticated("unsupported authorization scheme here")

    def login(self, user: str, password: str, address: str) -> None:
        """Check a password; one bcrypt per new credential, throttled failures.

        Raises:
            Unauthenticated, Throttled
        """
        assert self.users is not None and self.throttle is not None
        if self.users.cached(user, password):
            return
        s = self.settings
        state = self.throttle.state(address, user)
        if state.address_failures >= s.failures_per_address:
            raise Throttled(state.address_ttl)
        if state.user_failures >= s.failures_per_user and not state.known_address:
            raise Throttled(state.user_ttl)
        if self.users.verify(user, password):
            self.throttle.succeeded(address, user)
            return
        self.throttle.failed(address, user, s.failure_window_seconds)
        raise Unauthenticated("wrong user name or password")

    # -- what may they do ------------------------------------------------------------------------
    def allowed(self, caller: Caller, repository: str) -> frozenset[str]:
        """Actions ``caller`` may take on ``repository``: a token's claims, else the rules."""
        if caller.grant is not None:
            return caller.grant.repositories.get(repository, NOTHING)
        return self.rules.actions(caller.user, repository)

    def rules_allow(self, caller: Caller, repository: str) -> frozenset[str]:
        """What the rules give this caller, tokens of other issuers excepted (they are not our users)."""
        if caller.grant is not None and not caller.grant.own:
            return NOTHING
        return self.rules.actions(caller.user, repository)

    def names(self, who: Who, caller: Caller) -> bool:
        if caller.grant is not None and not caller.grant.own:
            return who.anonymous
        return who.names(caller.user, self.rules.groups_of(caller.user))

    def whole_catalog(self, caller: Caller) -> bool:
        return (caller.grant is not None and caller.grant.catalog) or self.names(self.catalog_who, caller)

    def visible(self, caller: Caller) -> Callable[[str], bool] | None:
        """A filter of the repositories the caller may pull (None: all of them)."""
        if self.whole_catalog(caller):
            return None
        return lambda name: "pull" in self.allowed(caller, name) or "pull" in self.rules_allow(caller, name)


def parse_basic(value: str) -> tuple[str, str]:
    """``user:password`` from a Basic credential (base64 of UTF-8).

    Raises:
        Unauthenticated: bad base64, not UTF-8, no colon, an empty user name.
    """
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise Unauthenticated("malformed Basic credentials (base64 of UTF-8 user:password)") from None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        raise Unauthenticated("malformed Basic credentials (no user:password)")
    return user, password


def build_auth(settings: Settings, throttle: LoginThrottle | None) -> Auth | None:
    """The access control of ``settings``; None when ``auth.scheme`` is ``none``. (``throttle`` None:
    only to check the files, as ``serve`` does before starting workers.)

    Raises:
        ConfigError: an unreadable htpasswd, signing key or trusted issuer key.
    """
    s = settings.auth
    if s.scheme == "none":
        return None
    from registry_ext.auth.tokens import TokenIssuer, TokenVerifier, load_or_create_key
    from registry_ext.auth.users import Users

    audit.configure_messages()  # htpasswd problems are reported from the start
    rules = compile_rules(s.rules, s.groups)
    try:
        users = Users(s.htpasswd) if s.htpasswd else None
        issuer = verifier = None
        if s.scheme == "token":
            if s.token_issuer:
                path = Path(s.signing_key or Path(settings.storage.root) / "auth" / "token-signing-key.pem")
                issuer = TokenIssuer(load_or_create_key(path), s.issuer, s.service, s.token_ttl_seconds)
            trusted = {t["issuer"]: _trusted_keys(t) for t in s.trusted_issuers}
            verifier = TokenVerifier(s.service, s.clock_skew_seconds, issuer, trusted)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"auth: {exc}") from exc
    return Auth(s, rules, users, issuer, verifier, throttle)


def _trusted_keys(entry: dict) -> WatchedFile:
    from registry_ext.auth.tokens import parse_jwks, parse_public_key

    if entry.get("public_key"):
        return WatchedFile(entry["public_key"], parse_public_key)
    return WatchedFile(entry["jwks"], parse_jwks)
