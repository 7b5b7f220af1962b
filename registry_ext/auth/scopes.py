"""What every endpoint needs, by endpoint name, and the Docker token scope grammar.

``NEEDS`` is the one table the authorisation hook (auth/gate.py) reads
before any view runs. Every endpoint the app registers must be in it: with
auth on, the app refuses to start while one is missing
(:func:`undeclared`), and tests/auth/test_rules_and_scopes.py fails for any endpoint of
an app with every feature enabled. A new blueprint (the mirror, the update
feed) adds its rows here.

Repository endpoints need what distribution asks for them
(``registry/handlers/app.go``, by method): GET/HEAD ``pull``, POST/PUT/PATCH
``pull,push``, DELETE ``delete``. So an upload session's status (GET) needs
only ``pull`` and cancelling one (DELETE) needs ``delete``: clients ask for
tokens by method, and a token scoped that way must work here
(the conformance suite's client does exactly that).
"""
from __future__ import annotations

import dataclasses
import re

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci.reference import NAME_MAX, NAME_RE

MAX_SCOPES = 30  # per token request: clients ask for 1-3; each one makes the token longer


@dataclasses.dataclass(frozen=True)
class Need:
    """``open``: no check; ``login``: any valid credential; ``repository``: ``actions`` on the
    ``<name>`` of the URL; ``catalog``: a listing across repositories, filtered per caller;
    ``ops``: the who-list ``auth.<ops>`` (metrics, readyz)."""

    kind: str
    actions: frozenset[str] = frozenset()
    ops: str = ""


OPEN = Need("open")
LOGIN = Need("login")
CATALOG = Need("catalog")
PULL = Need("repository", frozenset({"pull"}))
PUSH = Need("repository", frozenset({"pull", "push"}))
DELETE = Need("repository", frozenset({"delete"}))

NEEDS: dict[str, Need] = {
    "health.healthz": OPEN,
    "health.readyz": Need("ops", ops="readyz"),
    "metrics.prometheus": Need("ops", ops="metrics"),
    "token.get_token": OPEN,  # checks its own credentials (Docker token spec)
    "v2.base": LOGIN,  # `docker login` asks here
    "v2.blobs.get_blob": PULL,
    "v2.blobs.delete_blob": DELETE,
    "v2.uploads.start_upload": PUSH,  # a mount also needs pull on `from` (else a plain upload)
    "v2.uploads.patch_upload": PUSH,
    "v2.uploads.finish_upload": PUSH,
    "v2.uploads.get_upload_status": PULL,
    "v2.uploads.cancel_upload": DELETE,
    "v2.manifests.get_manifest": PULL,
    "v2.manifests.put_manifest": PUSH,
    "v2.manifests.delete_manifest": DELETE,
    "v2.listing.list_tags": PULL,
    "v2.listing.list_referrers": PULL,
    "v2.listing.catalog": CATALOG,
    "v2.oci_ext.tag_history": PULL,
    "v2.ext.list_tags_ext": PULL,
    "v2.ext.newer_tags": PULL,
    "v2.ext.digest_tags": PULL,
    "v2.ext.list_manifests": PULL,
    "v2.ext.orphan_signatures": PULL,
    "v2.discover.discover": LOGIN,
    "v2.discover.discover_repository": PULL,
    "v2.mirror_diff.mirror_diff": PULL,
    # the update feed and the Atom feed across repositories show only what the caller may pull
    # (api/feed.py asks gate.repository_filter); a long-poll handed to the waiter comes back here
    "v2.feed.updates": CATALOG,
    "v2.atom.repositories_feed": CATALOG,
    "v2.atom.repository_feed": PULL,
    # the web UI checks for itself (api/ui/views.py): its caller comes from its session cookie, each
    # repository page needs pull, the repository list shows only what the caller may pull
    "ui.repositories": OPEN,
    "ui.repository": OPEN,
    "ui.tag": OPEN,
    "ui.untagged": OPEN,
    "ui.mirror": OPEN,
    "ui.mirror_diff": OPEN,
    "ui.mirror_upstream": OPEN,
    "ui.login": OPEN,
    "ui.logout": OPEN,
    "ui.static": OPEN,
}


def undeclared(app) -> list[str]:
    """Endpoints of ``app`` without a row in ``NEEDS``."""
    return sorted({rule.endpoint for rule in app.url_map.iter_rules()} - set(NEEDS))


@dataclasses.dataclass(frozen=True)
class Scope:
    """One ``type:name:actions`` scope (``repository:a/b:pull,push``, ``registry:catalog:*``)."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        order = [a for a in ("pull", "push", "delete", "*") if a in self.actions]
        return f"{self.type}:{self.name}:{','.join(order)}"


CATALOG_SCOPE = Scope("registry", "catalog", frozenset({"*"}))
_ACTION = re.compile(r"[a-z*]{1,16}")


def parse_scopes(values: list[str]) -> list[Scope]:
    """The ``scope`` parameters of a token request (each may hold several, space-separated).

    Raises:
        RegistryError(UNSUPPORTED, 400): a malformed scope, an invalid repository name,
            an unknown type, or more than ``MAX_SCOPES``.
    """
    words = [w for value in values for w in value.split(" ") if w]
    if len(words) > MAX_SCOPES:
        raise _bad(f"at most {MAX_SCOPES} scopes per token request", count=len(words))
    return [_parse(word) for word in words]


def _parse(word: str) -> Scope:
    kind, sep, rest = word.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not actions:
        raise _bad("a scope is type:name:actions", scope=word[:300])
    wanted = frozenset(actions.split(","))
    if not all(_ACTION.fullmatch(a) for a in wanted):
        raise _bad("malformed actions", scope=word[:300])
    if kind == "repository":
        if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
            raise _bad("invalid repository name in scope", scope=word[:300])
        return Scope(kind, name, wanted)
    if kind == "registry" and name == "catalog":
        return Scope(kind, name, wanted)
    raise _bad("unknown scope type (repository:<name>:<actions> or registry:catalog:*)", scope=word[:300])


def _bad(message: str, **detail) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, detail, message=message)
