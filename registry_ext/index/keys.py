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
    <p>:repo:{<name>}:pulls                  HASH  t:<tag> / m:<digest> -> pulls counted (a manifest GET; not
                                                   HEAD). Statistics kept by reindex (index/pulls.py)
    <p>:repo:{<name>}:pulled                 HASH  t:<tag> / m:<digest> -> ms of the last counted pull
    <p>:repo:{<name>}:mirror:checked         HASH  tag -> ms the pull-through mirror last confirmed the tag
                                                   with its upstream (a GET or a HEAD with the same digest;
                                                   index/mirror_state.py). Freshness only: reindex drops it,
                                                   and the next pull of the tag asks the upstream again
    <p>:paused:<address>                     STRING with a TTL: uploads from this client address are refused
                                                   until it expires (a slow upload was cut; index/pauses.py).
                                                   Not part of the index: reindex neither reads nor rebuilds it
    <p>:repo:{<name>}:events                 STREAM the repository's tag events, field d = event JSON: the
                                                   newest feed.recent_per_repo, plus any not yet in the feed
                                                   (written in the index transaction; index/feed.py)
    <p>:repo:{<name>}:events:copied          STRING id of the last events entry copied to the feed (the
                                                   {feed} heads' copy in the repository's slot)

The update feed (index/feed.py, index/hooks.py) is one slot of its own, ``{feed}``::

    <p>:{feed}:stream                        STREAM every repository's events: n (sequence), r (repository),
                                                   d (event JSON); the first entry of an epoch has r = ""
    <p>:{feed}:meta                          HASH  epoch, n (last sequence number), built_at
    <p>:{feed}:heads                         HASH  repository -> id of its last events entry copied to the feed
    <p>:{feed}:lock                          STRING token of the worker building the feed (PX)
    <p>:{feed}:build                         STREAM the feed being built, renamed over stream when done
    <p>:{feed}:watch:<id>                    STRING a watch list's filter JSON (EX feed.watch_ttl_seconds)
    <p>:{feed}:hook:<name>:payload           HASH  stream id -> event JSON of a delivery not done yet
    <p>:{feed}:hook:<name>:due               ZSET  stream id, score = ms its next attempt is due
    <p>:{feed}:hook:<name>:attempts          HASH  stream id -> failed attempts so far
    <p>:{feed}:hook:<name>:dead              LIST  dead letters, newest first (JSON with the last error)
    (consumer group ``hook:<name>`` on <p>:{feed}:stream: the endpoint's read position; index/hooks.py)

Garbage collection (index/gc_state.py) has a slot of its own, ``{gc}``::

    <p>:{gc}:lock                            STRING lease token of the one gc run allowed at a time (PX,
                                                   refreshed while it runs; index/leases.py)
    <p>:{gc}:stats                           HASH  runs, bytes_freed, blobs_deleted, links_removed (totals),
                                                   last_finished_ms, last_duration_ms, last_bytes_freed

The pull-through blob fill (index/fills.py) has one slot per digest, ``{<digest>}``::

    <p>:fill:{<digest>}:lease                STRING token of the worker fetching the blob from an upstream
                                                   (PX proxy lease ttl, refreshed while it fills)
    <p>:fill:{<digest>}:state                HASH  token, status, size, written, error, reason of that fill
                                                   (what followers may read of its temp file)

Garbage collection on S3 (index/blob_guard.py) has the same slot per digest::

    <p>:blob:{<digest>}:lease                STRING token of the one writer relying on the blob, or of gc
                                                   deciding on it (PX 30 s, refreshed while held)
    <p>:blob:{<digest>}:touched              STRING ms a writer last relied on the blob (EX max(7 days,
                                                   2 x gc.grace_period_seconds))

The pull-through mirror's upstream status (index/upstream_status.py), one slot per upstream::

    <p>:upstream:{<upstream>}:sync           STRING lease token of the one sync of the upstream running
                                                   (index/leases.py; proxy/sync.py)
    <p>:upstream:{<upstream>}:synced         STRING ms the last sync of the upstream finished
    <p>:upstream:{<upstream>}:status         HASH  ok_ms, error_ms, error_reason, error_status, error_kind,
                                                   errors, window_ms, window_errors (fixed fields)

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

    @property
    def feed(self) -> "FeedKeys":
        return FeedKeys(f"{self.prefix}:{{feed}}")

    @property
    def gc_lock(self) -> str:
        return f"{self.prefix}:{{gc}}:lock"

    @property
    def gc_stats(self) -> str:
        return f"{self.prefix}:{{gc}}:stats"

    def fill_lease(self, digest: str) -> str:
        return f"{self.prefix}:fill:{{{digest}}}:lease"

    def fill_state(self, digest: str) -> str:
        return f"{self.prefix}:fill:{{{digest}}}:state"

    def blob_lease(self, digest: str) -> str:
        return f"{self.prefix}:blob:{{{digest}}}:lease"

    def blob_touched(self, digest: str) -> str:
        return f"{self.prefix}:blob:{{{digest}}}:touched"

    def upstream_status(self, upstream: str) -> str:
        return f"{self.prefix}:upstream:{{{upstream}}}:status"

    def upstream_sync(self, upstream: str) -> str:
        return f"{self.prefix}:upstream:{{{upstream}}}:sync"

    def upstream_synced(self, upstream: str) -> str:
        return f"{self.prefix}:upstream:{{{upstream}}}:synced"


class FeedKeys:
    """Keys of the update feed; all share the ``{feed}`` hash tag."""

    def __init__(self, base: str):
        self.stream = f"{base}:stream"
        self.meta = f"{base}:meta"
        self.heads = f"{base}:heads"
        self.lock = f"{base}:lock"
        self.build = f"{base}:build"
        self.base = base

    def watch(self, watch_id: str) -> str:
        return f"{self.base}:watch:{watch_id}"

    def hook(self, name: str, part: str) -> str:
        return f"{self.base}:hook:{name}:{part}"

    @staticmethod
    def group(name: str) -> str:
        return f"hook:{name}"


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
        self.events = f"{base}:events"
        self.events_copied = f"{base}:events:copied"
        self.pulls = f"{base}:pulls"
        self.pulled = f"{base}:pulled"
        self.mirror_checked = f"{base}:mirror:checked"

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
