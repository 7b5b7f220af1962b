"""What the web UI shows (api/ui/): pages assembled from the listing services, never a whole repository.

Every read is one bounded page of an existing service: the catalog
(filtered, at most ``limits.scan_max`` names examined), one page of
enriched tags, the newer-than scan, one page of untagged manifests, one
page of a tag's history, one page of referrers. So a page costs the same on
a repository of ten tags as on one of 100,000.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable

import orjson

from registry_ext.index.scan import Position
from registry_ext.oci.manifest import parse_manifest
from registry_ext.services import Registry
from registry_ext.services.history import EVENT_ANNOTATION, TIMESTAMP_ANNOTATION, HistoryQuery, tag_history
from registry_ext.services.manifest_entry import load_config
from registry_ext.services.tag_listing import TagQuery, rfc3339
from registry_ext.oci.repo_filter import RepoFilter
from registry_ext.oci.versions import parse_tag

CONFIG_SHOWN_MAX = 256 * 1024  # a bigger image config is linked, not shown
REPOS_PER_PAGE = 50
TAGS_PER_PAGE = 50
UNTAGGED_SCAN = 256  # manifests examined per page for the untagged ones (one detail chunk, ~10 ms)


@dataclasses.dataclass(frozen=True)
class RepoRow:
    name: str
    tags: int
    updated: str | None


@dataclasses.dataclass(frozen=True)
class Family:
    """Tags of one page sharing a shape and variant (``1.2-alpine`` and ``1.3-alpine``)."""

    label: str
    tags: list[dict[str, Any]]


class Browse:
    def __init__(self, registry: Registry):
        self.registry = registry

    def repositories(self, flt: RepoFilter, last: str | None, visible: Callable[[str], bool] | None,
                     ) -> tuple[list[RepoRow], str | None]:
        """One page of repository names the filter and ``visible`` accept, with tag counts and
        last update; the next page's ``last`` (None at the end)."""
        def wanted(name: str) -> bool:
            return flt.matches(name) and (visible is None or visible(name))

        if last is None and flt.prefix:
            last = flt.prefix[:-1] or None  # the catalog is in byte order: start next to the prefix
        page = self.registry.listing.catalog(REPOS_PER_PAGE, last, wanted)
        summaries = self.registry.index.read.repo_summaries(page.items)
        rows = [RepoRow(name, count, rfc3339(updated)) for name, (count, updated) in zip(page.items, summaries)]
        return rows, page.next_last

    def tags(self, name: str, sort: str, position: Position | None) -> tuple[list[Family], Position | None]:
        """One page of tags, newest first, grouped into families in order of first appearance."""
        page = self.registry.tag_listing.page(name, TagQuery(sort=sort, descending=True, n=TAGS_PER_PAGE,
                                                             position=position))
        families: dict[str, list[dict[str, Any]]] = {}
        for tag in page.tags:
            families.setdefault(family_label(tag["name"]), []).append(tag)
        return [Family(label, tags) for label, tags in families.items()], page.next

    def untagged(self, name: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to 20 untagged manifests, newest push first, looking at most at ``UNTAGGED_SCAN``
        manifests (a repository whose manifests are all tagged would otherwise be read whole);
        the cursor to look further (None: no more)."""
        return self.registry.manifest_listing.page(name, 20, cursor, "desc", "false", UNTAGGED_SCAN)

    def newer(self, name: str, tag: str) -> dict[str, Any]:
        return self.registry.tag_listing.newer(name, tag, None, 10)

    def tag(self, name: str, tag: str, history_cursor: str | None, scan_max: int) -> dict[str, Any]:
        """A tag's manifest (pretty JSON), image config, referrers and one page of its history.

        Raises:
            RegistryError(NAME_UNKNOWN, MANIFEST_UNKNOWN, UNSUPPORTED)
        """
        stored = self.registry.manifests.get(name, tag)
        assert stored.data is not None  # get() with the body raises when it is missing
        manifest = parse_manifest(stored.data, stored.media_type)
        config_text, config_size = None, manifest.config.size if manifest.config else None
        if manifest.config is not None and manifest.config.size <= CONFIG_SHOWN_MAX:
            config = load_config(self.registry.storage, manifest)
            config_text = pretty(config) if config is not None else None
        referrers, _ = self.registry.listing.referrers(name, stored.digest, None, None)
        history = tag_history(self.registry.storage, name, tag, HistoryQuery(n=50, cursor=history_cursor),
                              50, scan_max)
        return {"digest": stored.digest, "mediaType": stored.media_type, "size": stored.size,
                "manifest": pretty(orjson.loads(stored.data)), "config": config_text, "configSize": config_size,
                "referrers": referrers, "timeline": timeline(history.descriptors),
                "historyNext": history.next_cursor,
                "children": [{"digest": c.digest, "platform": c.platform} for c in manifest.children]}


def family_label(tag: str) -> str:
    """The family a tag belongs to, for grouping: its variant (``alpine``), else its shape or kind."""
    version = parse_tag(tag)
    if version.kind == "signature":
        return "signatures and SBOMs"
    if version.kind not in ("release", "prerelease"):
        return "other tags"
    return version.family.variant or "plain versions"


def timeline(descriptors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History entries (newest first) as moves: when, what happened, from which digest to which."""
    rows = []
    padded = itertools.chain(descriptors[1:], [None])
    for entry, older in zip(descriptors, padded):
        notes = entry["annotations"]
        event = notes[EVENT_ANNOTATION]
        if event == "created" and older is not None and older["annotations"][EVENT_ANNOTATION] == "created":
            event = "moved"
        rows.append({"time": notes[TIMESTAMP_ANNOTATION], "event": event,
                     "to": entry["digest"], "from": older["digest"] if older else None})
    return rows


def pretty(doc: Any) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
