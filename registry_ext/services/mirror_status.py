"""What the web UI shows of the pull-through mirror's upstreams (api/ui/mirror_views.py).

Per configured upstream: its hosts, URLs (scheme, host, port only), ``manifest_ttl``; how it has been
answering (index/upstream_status.py: last answer, last error, error counts); and what its cache
``<upstream>/...`` holds: repositories, tags, freshness (the oldest and newest upstream confirmation
of a cached tag, index/mirror_state.py) and size.

Every figure is bounded per page view, never a walk of a whole cache:

- repositories: the catalog's count of ``<upstream>/`` names (one ZLEXCOUNT) when every repository
  is visible; otherwise those the caller may pull among the first ``REPOS_SCANNED``;
- tags and freshness: over the first ``REPOS_SCANNED`` repositories (one freshness hash of at most
  ``FRESHNESS_SCAN`` tags read per repository);
- size: a bounded scan, not a counter: the blob links of those repositories are read until
  ``SIZE_SCAN`` links, and each distinct blob is counted once at its stored size (one stat each).
  ``complete`` says whether the figures cover the whole cache; the page says "at least" otherwise.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable
from urllib.parse import urlsplit

from registry_ext.index.upstream_status import RepoFreshness, Status
from registry_ext.proxy.config import Upstream
from registry_ext.services import Registry
from registry_ext.services.tag_listing import rfc3339

REPOS_SCANNED = 200
REPOS_PER_PAGE = 50
FRESHNESS_SCAN = 1000
SIZE_SCAN = 4000
Visible = Callable[[str], bool] | None


@dataclasses.dataclass(frozen=True)
class CacheFigures:
    repositories: int
    tags: int
    size: int
    blobs: int
    oldest_check: str | None
    newest_check: str | None
    complete: bool  # False: the figures cover only part of the cache (at least these)


@dataclasses.dataclass(frozen=True)
class UpstreamView:
    name: str
    hosts: tuple[str, ...]
    urls: tuple[str, ...]
    manifest_ttl: int
    default: bool
    status: Status
    last_ok: str | None
    last_error: str | None
    window_since: str | None
    cache: CacheFigures


@dataclasses.dataclass(frozen=True)
class RepoRow:
    name: str           # the local repository (links to its page)
    upstream_repo: str  # the name the upstream knows
    tags: int
    checked_tags: int
    oldest_check: str | None
    newest_check: str | None
    scanned: bool


class MirrorStatus:
    def __init__(self, registry: Registry):
        self.registry = registry
        self.index = registry.index.upstreams

    def overview(self, upstreams: Iterable[Upstream], default: str, visible: Visible) -> list[UpstreamView]:
        """One view per upstream, in name order."""
        ordered = sorted(upstreams, key=lambda u: u.name)
        found = self.index.read([u.name for u in ordered])
        return [self._view(u, u.name == default, found[u.name], self._cache(u.name, visible)) for u in ordered]

    def upstream(self, upstream: Upstream, default: str, visible: Visible, after: str | None,
                 ) -> tuple[UpstreamView, list[RepoRow], str | None]:
        """One upstream's view and one page of its cached repositories the caller may pull (after
        ``after``); the next page's ``after`` (None at the end)."""
        view = self._view(upstream, upstream.name == default, self.index.read([upstream.name])[upstream.name],
                          self._cache(upstream.name, visible))
        _, names = self.index.cached(upstream.name, REPOS_SCANNED, after)
        shown = [n for n in names if visible is None or visible(n)]
        page = shown[:REPOS_PER_PAGE]
        rows = [_row(upstream.name, f) for f in self.index.freshness(page, FRESHNESS_SCAN)]
        if len(shown) > REPOS_PER_PAGE:
            return view, rows, page[-1]
        return view, rows, names[-1] if len(names) == REPOS_SCANNED else None

    def _view(self, upstream: Upstream, default: bool, status: Status, cache: CacheFigures) -> UpstreamView:
        return UpstreamView(upstream.name, upstream.hosts, tuple(bare_url(u) for u in upstream.urls),
                            upstream.manifest_ttl, default, status, rfc3339(status.ok_ms),
                            rfc3339(status.error_ms), rfc3339(status.window_ms), cache)

    def _cache(self, upstream: str, visible: Visible) -> CacheFigures:
        count, names = self.index.cached(upstream, REPOS_SCANNED)
        complete = count <= len(names)
        if visible is not None:
            names = [n for n in names if visible(n)]
            count = len(names)
        fresh = self.index.freshness(names, FRESHNESS_SCAN)
        stamps = [s for f in fresh for s in (f.oldest_ms, f.newest_ms) if s is not None]
        size, blobs, sized_all = self._size(names)
        return CacheFigures(count, sum(f.tags for f in fresh), size, blobs, rfc3339(min(stamps, default=None)),
                            rfc3339(max(stamps, default=None)),
                            complete and sized_all and all(f.scanned for f in fresh))

    def _size(self, names: list[str]) -> tuple[int, int, bool]:
        return cache_size(self.registry, names)


def cache_size(registry: Registry, names: list[str], scan: int | None = None) -> tuple[int, int, bool]:
    """Bytes and number of the distinct blobs linked by ``names``; False when the scan stopped at
    ``scan`` links (default ``SIZE_SCAN``; the figures are then a lower bound). Also the size the cache
    cap is checked against (services/mirror_evict.py)."""
    scan = SIZE_SCAN if scan is None else scan
    repos, blobs = registry.storage.repos, registry.storage.blobs
    seen: set[str] = set()
    size = links = 0
    for name in names:
        for digest, _mtime in repos.blob_links(name):
            links += 1
            if links > scan:
                return size, len(seen), False
            if str(digest) not in seen:
                seen.add(str(digest))
                size += blobs.size(digest) or 0
    return size, len(seen), True


def bare_url(url: str) -> str:
    """``scheme://host[:port]`` of a configured URL: never user info, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _row(upstream: str, fresh: RepoFreshness) -> RepoRow:
    return RepoRow(fresh.name, fresh.name[len(upstream) + 1:], fresh.tags, fresh.checked_tags,
                   rfc3339(fresh.oldest_ms), rfc3339(fresh.newest_ms), fresh.scanned)
