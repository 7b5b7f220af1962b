"""Spec listings: tags/list, the catalog and referrers, all paged from the index.

Paging follows distribution-spec v1.1.1 "Listing Tags": byte order, ``last``
exclusive and need not exist, ``n=0`` gives an empty list and no Link, and
fewer than ``n`` results only when none remain or a Link is given (so an
``n`` above the configured page maximum is clamped and answered with a Link).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from registry_ext.config import LimitSettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index import Index
from registry_ext.oci.digest import parse_digest


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

    def catalog(self, n: int | None, last: str | None) -> Page:
        return self._page(lambda lim: self.index.read.repos_page(last, lim), n)

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
