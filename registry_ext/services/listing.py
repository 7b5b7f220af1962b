"""Spec listings: tags/list, the catalog and referrers, all paged from the index.

Paging follows distribution-spec v1.1.1 "Listing Tags": byte order, ``last``
exclusive and need not exist, ``n=0`` gives an empty list and no Link, and
fewer than ``n`` results only when none remain or a Link is given (so an
``n`` above the configured page maximum is clamped and answered with a Link).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from registry_ext.config import LimitSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index import Index
from registry_ext.oci.digest import parse_digest


_CATALOG_BATCH = 1000  # names read per round trip by a filtered catalog


@dataclasses.dataclass(frozen=True)
class Page:
    items: list[Any]
    next_last: str | None  # set when more remain: the `last` of the next page
    limit: int | None


class ListingService:
    def __init__(self, index: Index, limits: LimitSettings):
        self.index = index
        self.limits = limits

    def tags(self, name: str, n: int | None, last: str | None) -> Page:
        """One page of tags/list.

        Raises:
            RegistryError(NAME_UNKNOWN)
        """
        page = self._page(lambda lim: self.index.read.tags_page(name, last, lim), n)
        # One round trip in the common case: existence is only asked when the page is empty.
        if not page.items and not self.index.read.repo_exists(name):
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
        return page

    def catalog(self, n: int | None, last: str | None, visible: Callable[[str], bool] | None = None) -> Page:
        """One page of the catalog; with ``visible``, only the repositories it accepts (access control)."""
        if visible is None:
            return self._page(lambda lim: self.index.read.repos_page(last, lim), n)
        return self._visible_page(n, last, visible)

    def _visible_page(self, n: int | None, last: str | None, visible: Callable[[str], bool]) -> Page:
        """The catalog filtered, read in batches. At most ``limits.scan_max`` names are examined:
        past that the page ends early, with a ``Link`` resuming after the last name examined."""
        limit = None if n is None else min(n, self.limits.page_max)
        if limit == 0:
            return Page([], None, 0)
        found: list[str] = []
        examined, cursor = 0, last
        while True:
            names = self.index.read.repos_page(cursor, _CATALOG_BATCH)
            for position, name in enumerate(names, 1):
                examined += 1
                if visible(name):
                    if limit is not None and len(found) == limit:
                        return Page(found, found[-1], limit)  # one more exists: this one
                    found.append(name)
                if examined >= self.limits.scan_max:
                    more = position < len(names) or len(names) == _CATALOG_BATCH
                    return Page(found, name if more else None, limit)
            if len(names) < _CATALOG_BATCH:
                return Page(found, None, limit)
            cursor = names[-1]

    def referrers(self, name: str, digest_str: str, artifact_type: str | None,
                  last: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Referrer descriptors of a subject (filtered), and the next page's ``last``.

        A page holds at most ``limits.referrers_page`` descriptors and
        ``limits.page_max_bytes`` of them (at least one); annotations are never cut
        (the spec says they MUST be copied), a page is cut instead.
        """
        subject = str(parse_digest(digest_str))
        entries, next_last = self.index.read.referrers(name, subject, last, self.limits.referrers_page,
                                                       self.limits.page_max_bytes)
        descriptors = [_descriptor(e) for e in entries]
        if artifact_type is not None:
            descriptors = [d for d in descriptors if d.get("artifactType") == artifact_type]
        return descriptors, next_last

    def _page(self, fetch, n: int | None) -> Page:
        if n is None:
            return Page(fetch(None), None, None)
        limit = min(n, self.limits.page_max)
        if limit == 0:
            return Page([], None, 0)
        items = fetch(limit + 1)
        if len(items) > limit:
            return Page(items[:limit], items[limit - 1], limit)
        return Page(items, None, limit)


def _descriptor(entry: dict[str, Any]) -> dict[str, Any]:
    out = {"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"]}
    if entry.get("artifactType"):
        out["artifactType"] = entry["artifactType"]
    if entry.get("annotations"):
        out["annotations"] = entry["annotations"]
    return out
