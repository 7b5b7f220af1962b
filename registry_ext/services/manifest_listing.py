"""Manifest listing: every manifest of a repository, tagged or not, newest push first.

Each entry carries its tags, size, media type, push time, number of
referrers and of indexes listing it (GCR's ``manifest`` map in tags/list is the closest known shape;
docs/extensions.md compares them). Pages come from the ``manifests:pushed``
sorted set, resumable from an opaque (push time, digest) position.
"""
from __future__ import annotations

from typing import Any

import orjson

from registry_ext.config import LimitSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index import Index
from registry_ext.oci import pagination
from registry_ext.oci.metadata import TRUNCATED
from registry_ext.index.pulls import combine, manifest_field
from registry_ext.services.tag_listing import DETAIL_CHUNK, mirror_info, mirror_upstream, pull_info, rfc3339


class ManifestListing:
    def __init__(self, index: Index, limits: LimitSettings, upstreams: frozenset[str] = frozenset()):
        self.index = index
        self.limits = limits
        self.upstreams = upstreams  # the pull-through mirror's upstream names: their caches show `mirror`

    def page(self, name: str, n: int, cursor: str | None, order: str,
             tagged: str | None, scan_max: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of manifests and the next page's cursor (None at the end).

        With ``tagged``, at most ``scan_max`` manifests (default ``limits.scan_max``) are examined:
        past that the page ends early, with a cursor (the web UI asks for a small budget).

        Raises:
            RegistryError(NAME_UNKNOWN, UNSUPPORTED)
        """
        if not self.index.read.repo_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        if order not in ("asc", "desc") or tagged not in (None, "true", "false"):
            parameter = "order" if order not in ("asc", "desc") else "tagged"
            raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": parameter},
                                message="order must be asc or desc; tagged must be true or false")
        descending = order == "desc"
        position = _decode(cursor, descending)
        budget = min(scan_max or self.limits.scan_max, self.limits.scan_max)
        found, resume = self._scan(name, n, descending, position, tagged, budget) if n else ([], None)
        token = pagination.encode({"m": list(resume), "d": descending}) if resume else None
        return found, token

    def _scan(self, name, n, descending, position, tagged, scan_max):
        """Matching manifests of one page, and the position to resume from (None at the end).

        Entries are read in batches of at most ``DETAIL_CHUNK``; the page ends
        early once its entries reach ``limits.page_max_bytes`` of JSON (it
        always holds one).
        """
        key = self.index.keys.repo(name).manifests_pushed
        found: list[tuple[Any, dict[str, Any]]] = []
        batch, scanned, used = min(max(n + 1, 64) if tagged else n + 1, DETAIL_CHUNK), 0, 0
        while True:
            items = self.index.scan.scored(key, descending, position, batch)
            for item, info in zip(items, self.details(name, [i.tag for i in items])):
                if not _wanted(info, tagged):
                    continue
                size = len(orjson.dumps(info)) + 1
                if len(found) == n or (found and used + size > self.limits.page_max_bytes):
                    return [d for _i, d in found], found[-1][0].position
                found.append((item, info))
                used += size
            if len(items) < batch:
                return [d for _i, d in found], None
            position = items[-1].position
            scanned += len(items)
            if tagged and scanned >= scan_max:  # a filter that matches rarely: bounded work
                return [d for _i, d in found], position

    def details(self, name: str, digests: list[str]) -> list[dict[str, Any]]:
        """Manifest entries with their tags, what references them and their pulls (two round trips).

        ``inUse`` is true when the manifest is tagged, listed by an index or
        the subject of referrers: an untagged manifest is garbage only when
        ``inUse`` is false.

        ``referencedBy`` counts the indexes of the repository that list the
        manifest (a DELETE of it is refused while one remains) and the
        manifests whose ``subject`` it is (``referrers``, also given alone).
        """
        rk = self.index.keys.repo(name)
        entries = self.index.read.manifest_entries(name, digests)
        fields = [manifest_field(digest) for digest in digests]
        pipe = self.index.client.pipeline(transaction=False)
        for digest in digests:
            pipe.smembers(rk.digest_tags(digest))
            pipe.zcard(rk.referrers(digest))
            pipe.scard(rk.parents(digest))
        self.index.pulls.stage_read(pipe, name, fields)
        *replies, counts, times = pipe.execute()
        pulls = combine(fields, counts, times)
        out = []
        for i, digest in enumerate(digests):
            entry = entries.get(digest, {})
            tags, referrers, indexes = replies[3 * i:3 * i + 3]
            info: dict[str, Any] = {"digest": digest, "mediaType": entry.get("mediaType"),
                                    "size": entry.get("size"), "pushed": rfc3339(entry.get("pushedAt")),
                                    "tags": sorted(tags), "referrers": referrers,
                                    "referencedBy": {"indexes": indexes, "referrers": referrers},
                                    "inUse": bool(tags or indexes or referrers)}
            if fields[i] in pulls:
                info["pulls"] = pull_info(pulls[fields[i]])
            for field in ("artifactType", "subject", "platforms", "labels", TRUNCATED):
                if entry.get(field):
                    info[field] = entry[field]
            if entry.get("created"):
                info["imageCreated"] = entry["created"]
            out.append(info)
        self._mirrored(name, out)
        return out

    def _mirrored(self, name: str, infos: list[dict[str, Any]]) -> None:
        """In an upstream's cache, ``mirror`` on each manifest: the upstream and the latest
        confirmation of any of its tags (one more round trip, for the page's tags only)."""
        upstream = mirror_upstream(name, self.upstreams)
        if upstream is None:
            return
        synced = self.index.mirror.read(name, [tag for info in infos for tag in info["tags"]])
        for info in infos:
            times = [synced[tag] for tag in info["tags"] if tag in synced]
            info["mirror"] = mirror_info(upstream, max(times) if times else None)


def _wanted(info: dict[str, Any], tagged: str | None) -> bool:
    return tagged is None or bool(info["tags"]) == (tagged == "true")


def _decode(cursor: str | None, descending: bool):
    if cursor is None:
        return None
    try:
        payload = pagination.decode(cursor)
    except pagination.TokenError as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "cursor"}, message=str(exc)) from None
    position = payload.get("m")
    if (payload.get("d") != descending or not isinstance(position, list) or len(position) != 2
            or not isinstance(position[0], int) or not isinstance(position[1], str)):
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "cursor"},
                            message="cursor is malformed or belongs to another order")
    return position[0], position[1]
