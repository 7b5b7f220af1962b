"""Enriched tag listings: sorted, filtered, semver-aware pages with metadata.

A page is one ordered scan of a sorted set (index/scan.py) from a position,
filtered as it goes, then enriched in two pipelined round trips (tag ->
digest and timestamps; digest -> manifest entry). Without filters a page
costs O(log N + n). With filters the scan reads batches until the page is
full or ``limits.scan_max`` tags were examined; it then returns what it has
with a continuation, so no request is unbounded.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from registry_ext.config import LimitSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index import Index
from registry_ext.index.pulls import combine, tag_field
from registry_ext.index.scan import Position, ScanItem
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.metadata import TRUNCATED
from registry_ext.oci.tag_filter import TagFilter
from registry_ext.oci.versions import after_bound, before_bound, family_bounds, kind_bounds, member, parse_tag

SORTS = ("semver", "created", "updated", "name")
DETAIL_CHUNK = 256  # tags whose metadata one round trip reads while a page fills


@dataclasses.dataclass(frozen=True)
class TagQuery:
    sort: str = "name"
    descending: bool = False
    n: int = 100
    last: str | None = None
    position: Position | None = None
    digest: str | None = None
    filter: TagFilter = TagFilter()


@dataclasses.dataclass(frozen=True)
class TagPage:
    tags: list[dict[str, Any]]
    next: Position | None


def mirror_upstream(name: str, upstreams: frozenset[str]) -> str | None:
    """The upstream whose cache ``name`` is (``<upstream name>/<repository>``), or None."""
    head, _, rest = name.partition("/")
    return head if rest and head in upstreams else None


class TagListing:
    def __init__(self, index: Index, limits: LimitSettings, upstreams: frozenset[str] = frozenset()):
        self.index = index
        self.limits = limits
        self.upstreams = upstreams  # the pull-through mirror's upstream names: their caches show `mirror`

    def page(self, name: str, query: TagQuery, shape: Callable[[dict], dict] | None = None) -> TagPage:
        """One page of enriched tags, each passed through ``shape`` (the response's form of a tag).

        The page ends early, with a continuation, once its shaped tags reach
        ``limits.page_max_bytes`` of JSON (it always holds one); their metadata
        is read in chunks, so a page never holds more in memory than that and a chunk.

        Raises: RegistryError(NAME_UNKNOWN, UNSUPPORTED, DIGEST_INVALID)
        """
        if not self.index.read.repo_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        if query.n == 0:
            return TagPage([], None)
        if query.digest is not None:
            items, resume = self._by_digest(name, query)
        else:
            items, resume = self._scan(name, query)
        return self._fill(name, items, resume, shape or (lambda info: info))

    def _fill(self, name: str, items: list[ScanItem], resume: Position | None,
              shape: Callable[[dict], dict]) -> TagPage:
        """The shaped tags of ``items`` up to the byte budget; where the next page resumes."""
        out: list[dict] = []
        used = 0
        last = resume  # set with the first tag kept; a page is cut only after one
        for start in range(0, len(items), DETAIL_CHUNK):
            chunk = items[start:start + DETAIL_CHUNK]
            for item, info in zip(chunk, self._details(name, [i.tag for i in chunk])):
                if info is None:
                    continue  # deleted between the scan and now
                shaped = shape(info)
                size = len(orjson.dumps(shaped)) + 1
                if out and used + size > self.limits.page_max_bytes:
                    return TagPage(out, last)
                out.append(shaped)
                used, last = used + size, item.position
        return TagPage(out, resume)

    def _scan(self, name: str, query: TagQuery) -> tuple[list[ScanItem], Position | None]:
        """Matching tags of one page, and where the next page resumes (None: nothing left)."""
        start, stop, position = self._bounds(name, query)
        found: list[ScanItem] = []
        batch = max(query.n + 1, 64) if query.filter.active else query.n + 1
        scanned = 0
        while True:
            items = self.index.scan.scan(name, query.sort, query.descending, start, position, batch, stop)
            for item in items:
                if query.filter.matches(item.tag):
                    found.append(item)
                    if len(found) > query.n:
                        return found[:query.n], found[query.n - 1].position
            if len(items) < batch:
                return found, None
            position = items[-1].position
            scanned += len(items)
            if scanned >= self.limits.scan_max:
                return found, position  # a partial page; the continuation resumes the scan

    def _bounds(self, name: str, query: TagQuery) -> tuple[str | None, str | None, Position | None]:
        """Raw lex bounds (from a prefix, a version range or the kinds) and the start position.

        The stop bound applies on every page, so a continuation stays as
        narrow as the first page.
        """
        low, high = self._window(query)
        start, stop = (high, low) if query.descending else (low, high)
        if query.position is not None:
            return None, stop, query.position
        if query.last is None:
            return start, stop, None
        if query.sort == "name":
            return start, stop, query.last
        if query.sort == "semver":
            return (before_bound(query.last) if query.descending else after_bound(query.last)), stop, None
        return start, stop, self._time_position(name, query)

    @staticmethod
    def _window(query: TagQuery) -> tuple[str | None, str | None]:
        """The ascending (min, max) lex window every match lies in, for the lex sorts."""
        flt = query.filter
        if query.sort == "name" and flt.prefix:
            return f"[{flt.prefix}", f"({flt.prefix}\xff"
        if query.sort != "semver":
            return None, None
        if flt.version_range is not None:
            return flt.version_range.bounds()
        if flt.kinds is not None:
            buckets = {"version" if k in ("release", "prerelease") else k for k in flt.kinds}
            if len(buckets) == 1:
                return kind_bounds(buckets.pop())
        return None, None

    def _time_position(self, name: str, query: TagQuery) -> Position:
        key = self.index.keys.repo(name)
        score = self.index.client.zscore(key.tags_created if query.sort == "created" else key.tags_updated,
                                         query.last)
        if score is None:
            raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "last", "value": query.last[:200]},
                                message="with a time sort, last must name an existing tag (or use the Link)")
        return int(score), query.last

    def _by_digest(self, name: str, query: TagQuery) -> tuple[list[ScanItem], Position | None]:
        """The few tags of one manifest, sorted in memory the way the index would sort them."""
        digest = str(parse_digest(query.digest))
        tags = [t for t in self.index.read.digest_tags(name, digest) if query.filter.matches(t)]
        items = sorted((ScanItem(t, v) for t, v in zip(tags, self._sort_values(name, query.sort, tags))),
                       key=lambda i: i.position, reverse=query.descending)
        cut = query.position
        if cut is None and query.last is not None:
            cut = {"name": query.last, "semver": member(query.last)}.get(query.sort) \
                or self._time_position(name, query)
        if cut is not None:
            items = [i for i in items if (i.position < cut if query.descending else i.position > cut)]
        if len(items) > query.n:
            return items[:query.n], items[query.n - 1].position
        return items, None

    def _sort_values(self, name: str, sort: str, tags: list[str]) -> list[Position]:
        if sort == "name":
            return list(tags)
        if sort == "semver":
            return [member(t) for t in tags]
        if not tags:
            return []
        key = self.index.keys.repo(name)
        scores = self.index.client.zmscore(key.tags_created if sort == "created" else key.tags_updated, tags)
        return [(int(score or 0), tag) for score, tag in zip(scores, tags)]

    def newer(self, name: str, tag: str, client_digest: str | None, n: int) -> dict[str, Any]:
        """Tags of ``tag``'s family newer than it, newest first, and whether ``tag`` itself moved.

        One descending scan of ``tags:semver`` from the newest version down to
        ``tag``'s place (``tag`` need not exist), keeping its family's tags
        (oci/versions.py ``family_bounds``); bounded by ``limits.scan_max``.
        """
        if not self.index.read.repo_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        if client_digest is not None:
            client_digest = str(parse_digest(client_digest))
        current = self.index.read.tag_digest(name, tag)
        found, complete = self._newer_scan(name, tag, n)
        rk = self.index.keys.repo(name)
        digests = self.index.client.hmget(rk.tags, found) if found else []
        updated = self.index.client.zmscore(rk.tags_updated, found) if found else []
        answer: dict[str, Any] = {"name": name, "tag": tag, "digest": current,
                                  "newer": [{"name": t, "digest": d, "updated": rfc3339(u)}
                                            for t, d, u in zip(found, digests, updated) if d],
                                  "complete": complete}
        if client_digest is not None:
            answer["moved"] = current != client_digest  # a deleted tag has moved too (digest null)
        return answer

    def _newer_scan(self, name: str, tag: str, n: int) -> tuple[list[str], bool]:
        """Up to ``n`` newer tags, and whether they are all there are (False: more exist, or
        ``limits.scan_max`` stopped the scan)."""
        bounds = family_bounds(tag)
        if bounds is None:
            return [], True
        found: list[str] = []
        position, scanned, batch = None, 0, max(n + 1, 256)
        while True:
            items = self.index.scan.scan(name, "semver", True, bounds.max, position, batch, bounds.min)
            found += [i.tag for i in items if bounds.accepts(i.tag)]
            if len(found) > n:
                return found[:n], False
            if len(items) < batch:
                return found, True
            position = items[-1].position
            scanned += len(items)
            if scanned >= self.limits.scan_max:
                return found, False

    def tags_of(self, name: str, digest: str) -> list[str]:
        """Tags pointing at a manifest, in version order.

        Raises:
            RegistryError(DIGEST_INVALID, NAME_UNKNOWN, MANIFEST_UNKNOWN)
        """
        digest = str(parse_digest(digest))
        if not self.index.read.repo_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        if self.index.read.manifest(name, digest) is None:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"digest": digest})
        return sorted(self.index.read.digest_tags(name, digest), key=member)

    def orphans(self, name: str) -> list[dict[str, Any]]:
        """Signature, attestation and SBOM tags whose subject manifest is not in the repository."""
        if not self.index.read.repo_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        rk = self.index.keys.repo(name)
        tags = self.index.client.zrange(rk.tags_sig, 0, -1)
        versions = [parse_tag(t) for t in tags]
        pipe = self.index.client.pipeline(transaction=False)
        for tag, version in zip(tags, versions):
            pipe.hget(rk.tags, tag)
            pipe.hexists(rk.manifests, version.subject_digest)
        replies = pipe.execute()
        return [{"name": tag, "digest": replies[2 * i], "kind": v.signature_kind, "subject": v.subject_digest}
                for i, (tag, v) in enumerate(zip(tags, versions)) if not replies[2 * i + 1]]

    def _details(self, name: str, tags: list[str]) -> list[dict[str, Any] | None]:
        """Tag records with their manifest metadata, in the given order; None for a tag deleted since
        the scan (two round trips). In an upstream's cache each tag carries ``mirror``: the upstream
        and its last confirmation, read in the first round trip."""
        if not tags:
            return []
        rk = self.index.keys.repo(name)
        upstream = mirror_upstream(name, self.upstreams)
        pipe = self.index.client.pipeline(transaction=False)
        pipe.hmget(rk.tags, tags)
        pipe.zmscore(rk.tags_created, tags)
        pipe.zmscore(rk.tags_updated, tags)
        fields = [tag_field(tag) for tag in tags]
        self.index.pulls.stage_read(pipe, name, fields)
        if upstream is not None:
            self.index.mirror.stage_read(pipe, name, tags)
        digests, created, updated, counts, times, *synced = pipe.execute()
        pulls = combine(fields, counts, times)
        mirrors = [mirror_info(upstream, ms) for ms in synced[0]] if upstream is not None else [None] * len(tags)
        entries = self.index.read.manifest_entries(name, [d for d in digests if d])
        return [tag_info(tag, digest, made, moved, entries.get(digest, {}), pulls.get(field), mirror)
                if digest is not None else None
                for tag, field, digest, made, moved, mirror in zip(tags, fields, digests, created, updated, mirrors)]


def tag_info(tag: str, digest: str, created: float | None, updated: float | None,
             entry: dict[str, Any], pulls: tuple[int, int] | None = None,
             mirror: dict[str, Any] | None = None) -> dict[str, Any]:
    """One tag as the JSON extension shows it (``pulls``: its count and last pull ms, when pulled;
    ``mirror``: its upstream and last confirmation, in an upstream's cache)."""
    info: dict[str, Any] = {"name": tag, "digest": digest, "mediaType": entry.get("mediaType"),
                            "size": entry.get("size"), "created": rfc3339(created), "updated": rfc3339(updated)}
    if pulls is not None:
        info["pulls"] = pull_info(pulls)
    for field in ("artifactType", "platforms", "labels", TRUNCATED):
        if entry.get(field):
            info[field] = entry[field]
    if entry.get("created"):
        info["imageCreated"] = entry["created"]
    version = parse_tag(tag)
    info["kind"] = version.kind
    if version.kind == "signature":
        info["signature"] = {"kind": version.signature_kind, "subject": version.subject_digest}
    if mirror is not None:
        info["mirror"] = mirror
    return info


def mirror_info(upstream: str, synced_ms: Any) -> dict[str, Any]:
    """``{"upstream", "synced"}`` of cached content: ``synced`` is when the upstream last confirmed
    the tag (RFC 3339; null: never by tag, e.g. pulled by digest only)."""
    return {"upstream": upstream, "synced": rfc3339(int(synced_ms)) if synced_ms is not None else None}


def pull_info(pulls: tuple[int, int]) -> dict[str, Any]:
    """``{"count", "last"}`` of a pulled tag or manifest."""
    return {"count": pulls[0], "last": rfc3339(pulls[1])}


def rfc3339(ms: float | None) -> str | None:
    """Milliseconds since the epoch as RFC 3339 UTC with milliseconds."""
    if ms is None:
        return None
    stamp = datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
