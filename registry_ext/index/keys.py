"""Every Redis key name, in one place.

``<p>`` is the configurable prefix. ``{<name>}`` is the Redis Cluster hash
tag: all keys of one repository hash to one slot, so one MULTI/EXEC (or Lua
script) may touch them all on a single server and on a cluster. Cross-
repository keys (the catalog) are updated in separate, idempotent steps::

    <p>:repos                                ZSET  score 0, member repository name (catalog, lex order)
    <p>:{meta}, <p>:{meta}:lock              the index's own state (index/meta.py)
    <p>:repo:{<name>}:tags                   HASH  tag -> digest
    <p>:repo:{<name>}:tags:lex               ZSET  score 0, member tag (spec byte order; `last` = exclusive lex bound)
    <p>:repo:{<name>}:tags:created           ZSET  score ms the tag first appeared, member tag
    <p>:repo:{<name>}:tags:updated           ZSET  score ms the tag last moved, member tag
    <p>:repo:{<name>}:tags:semver            ZSET  score 0, member <order key>\0<tag> (version order, see
                                                   oci/versions.py; `last` = a version's lex bound)
    <p>:repo:{<name>}:tags:sig               ZSET  score 0, member tag: cosign-style signature/attestation/
                                                   SBOM tags (`sha256-<hex>.sig` ...), for orphan checks
    <p>:repo:{<name>}:digest:<dgst>:tags     SET   tags pointing at a manifest (reverse lookup)
    <p>:repo:{<name>}:manifests              HASH  digest -> JSON {mediaType, size, pushedAt, subject?,
                                                   artifactType?, created?, platforms?, labels?, truncated?}:
                                                   pusher-sized fields within limits.entry_fields_max_bytes
    <p>:repo:{<name>}:descriptors            HASH  digest -> JSON {artifactType?, annotations?} of a referrer,
                                                   whole (the referrers API must copy them); read by it alone
    <p>:repo:{<name>}:manifests:pushed       ZSET  score ms pushed, member digest (tagged or not)
    <p>:repo:{<name>}:referrers:<dgst>       ZSET  score 0, member digest of a manifest whose subject is <dgst>
    <p>:repo:{<name>}:children:<dgst>        SET   digests an index <dgst> lists in `manifests` (its children)
    <p>:repo:{<name>}:parents:<dgst>         SET   digests of the indexes of this repository that list <dgst>
                                                   (the reverse edges: a DELETE of <dgst> is refused while
                                                   one remains, unless forced; kept when <dgst> itself goes)
    <p>:paused:<address>                     STRING with a TTL: uploads from this client address are refused
                                                   until it expires (a slow upload was cut; index/pauses.py).
                                                   Not part of the index: reindex neither reads nor rebuilds it

Repository names cannot contain braces (spec grammar), and the prefix may
not either (config validation), so the hash tag is unambiguous.
"""
from __future__ import annotations


class Keys:
    def __init__(self, prefix: str):
        self.prefix = prefix

    @property
    def repos(self) -> str:
        return f"{self.prefix}:repos"

    @property
    def meta(self) -> str:
        return f"{self.prefix}:{{meta}}"

    def paused(self, address: str) -> str:
        return f"{self.prefix}:paused:{address}"

    def repo(self, name: str) -> "RepoKeys":
        return RepoKeys(f"{self.prefix}:repo:{{{name}}}")


class RepoKeys:
    """Keys of one repository; all share the ``{<name>}`` hash tag."""

    def __init__(self, base: str):
        self.base = base
        self.tags = f"{base}:tags"
        self.tags_lex = f"{base}:tags:lex"
        self.tags_created = f"{base}:tags:created"
        self.tags_updated = f"{base}:tags:updated"
        self.tags_semver = f"{base}:tags:semver"
        self.tags_sig = f"{base}:tags:sig"
        self.manifests = f"{base}:manifests"
        self.manifests_pushed = f"{base}:manifests:pushed"
        self.descriptors = f"{base}:descriptors"

    def digest_tags(self, digest: str) -> str:
        return f"{self.base}:digest:{digest}:tags"

    def referrers(self, digest: str) -> str:
        return f"{self.base}:referrers:{digest}"

    def children(self, digest: str) -> str:
        return f"{self.base}:children:{digest}"

    def parents(self, digest: str) -> str:
        return f"{self.base}:parents:{digest}"

    @property
    def pattern(self) -> str:
        """SCAN pattern matching every key of the repository."""
        return f"{self.base}:*"
