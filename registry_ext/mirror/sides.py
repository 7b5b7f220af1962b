"""The two sides of a comparison: this registry (index reads, no HTTP) or a remote over HTTP(S).

A side answers ``list(repo, untagged)`` with a :class:`~registry_ext.mirror.diff.Listing`,
``has_manifests(repo, digests)`` (to tell orphaned signature tags) and
``catalog()``. :class:`RemoteSide` pages through ``tags/list`` asking first
for the OCI-index shape of distribution-spec PR #579, which this registry
serves (listed at ``/v2/_oci/ext/discover``): such pages carry each tag's
digest and media type, so a side costs one request per page of ``page``
tags and no extra discovery request. A registry that answers with the plain
``{"name", "tags"}`` shape gets one HEAD per tag, with bounded concurrency.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import time
from typing import Any, Callable, Protocol
from urllib.parse import quote

from registry_ext.mirror.diff import Listing, TagInfo
from registry_ext.mirror.remote import RemoteClient, RemoteError, remote_repo
from registry_ext.oci.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from registry_ext.services import Registry
from registry_ext.services.tag_listing import TagQuery

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
TAGS_ACCEPT = f"{OCI_INDEX}, application/json;q=0.5"
Progress = Callable[[str, int, int], None]  # (what, done, total)
Names = list[str]  # tags, digests or repositories: inside the classes below, `list` is their method


class Side(Protocol):
    name: str

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (0 for this registry)."""

    def list(self, repo: str, untagged: bool = False) -> Listing: ...

    def has_manifests(self, repo: str, digests: Names) -> set[str]: ...

    def catalog(self) -> Names: ...


class LocalSide:
    """This registry, read through the listing services."""

    def __init__(self, registry: Registry, page: int = 10000, name: str = "local"):
        self.registry, self.page, self.name = registry, page, name
        self.requests = 0

    def list(self, repo: str, untagged: bool = False) -> Listing:
        out = Listing(repo, method="local")
        if not self.registry.index.read.repo_exists(repo):
            out.missing = True
            return out
        position = None
        while True:
            page = self.registry.tag_listing.page(repo, TagQuery(sort="name", n=self.page, position=position))
            for tag in page.tags:
                out.tags[tag["name"]] = TagInfo(tag["digest"], tag.get("mediaType"))
            if page.next is None:
                break
            position = page.next
        if untagged:
            out.untagged, cursor = {}, None
            while True:
                found, cursor = self.registry.manifest_listing.page(repo, self.page, cursor, "desc", "false")
                out.untagged.update((m["digest"], m.get("subject")) for m in found)
                if cursor is None:
                    break
            out.manifests |= set(out.untagged)
        return out

    def has_manifests(self, repo: str, digests: Names) -> set[str]:
        return {d for d in digests if self.registry.index.read.manifest(repo, d) is not None}

    def catalog(self) -> Names:
        return self.registry.index.read.repos_page(None, None)


class RemoteSide:
    """A registry over HTTP(S)."""

    def __init__(self, client: RemoteClient, page: int = 10000, progress: Progress | None = None,
                 deadline: float | None = None):
        self.client, self.page, self.progress, self.deadline = client, page, progress, deadline
        self.name = client.base_url

    @property
    def requests(self) -> int:
        return self.client.requests

    def list(self, repo: str, untagged: bool = False) -> Listing:
        name = remote_repo(self.client.base_url, repo)
        start = self.client.requests
        out = Listing(repo, method="plain")
        try:
            self._tags(name, out)
            if untagged and not out.missing and out.error is None:
                self._untagged(name, out)
        except RemoteError as exc:
            out.error = str(exc)
        out.requests = self.client.requests - start
        return out

    def _scope(self, name: str) -> str:
        return f"repository:{name}:pull"

    def _tags(self, name: str, out: Listing) -> None:
        """Page through tags/list asking for the OCI-index shape; HEAD the tags it did not describe."""
        url = f"/v2/{name}/tags/list?n={self.page}"
        names: list[str] = []
        seen: set[str] = set()
        for body, resp in self.client.pages(url, scope=self._scope(name), headers={"Accept": TAGS_ACCEPT},
                                            partial=out.partial):
            if body is None:
                return _missing_or_fail(resp, out)
            if isinstance(body, dict) and body.get("mediaType") == OCI_INDEX:  # PR #579: digests included
                out.method, page = "enriched", []
                for m in _items(body, "manifests", url):
                    tag = (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                    out.tags[str(tag)] = TagInfo(_str(m, "digest", url), m.get("mediaType"))
                    page.append(str(tag))
            else:
                page = [t for t in _items(body, "tags", url, allow_null=True) if isinstance(t, str)]
            if page and set(page) <= seen:
                out.partial.append("Link does not advance (the page repeats earlier tags); listing stopped")
                break
            names.extend(t for t in page if t not in seen)
            seen.update(page)
            if self._late(out):
                return
        self._head_all(name, [t for t in names if t not in out.tags], out)

    def _untagged(self, name: str, out: Listing) -> None:
        """Untagged manifests from ``_regext/manifests`` (left unknown when the remote lacks it)."""
        url = f"/v2/{name}/_regext/manifests?tagged=false&n={self.page}"
        found: dict[str, str | None] = {}
        for body, _resp in self.client.pages(url, scope=self._scope(name), partial=out.partial):
            if body is None:
                return
            for m in _items(body, "manifests", url):
                subject = m.get("subject")
                found[_str(m, "digest", url)] = subject if isinstance(subject, str) else None
        out.untagged = found
        out.manifests |= set(found)

    def _head_all(self, name: str, tags: Names, out: Listing) -> None:
        failures: list[str] = []
        done = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.client.concurrency) as pool:
            futures = {pool.submit(self._head, name, tag): tag for tag in tags}
            for future in concurrent.futures.as_completed(futures):
                tag, done = futures[future], done + 1
                try:
                    info = future.result()
                except RemoteError as exc:  # after a 429 or the deadline the rest fail fast, unsent
                    failures.append(f"{tag}: {exc}")
                else:
                    if info is not None:
                        out.tags[tag] = info
                if self.progress and (done % 100 == 0 or done == len(tags)):
                    self.progress(f"HEAD {out.repo}", done, len(tags))
        if failures:
            out.partial.append(f"{len(failures)} of {len(tags)} tags could not be resolved "
                               f"(first: {sorted(failures)[0]})")
        self._late(out)

    def _head(self, name: str, tag: str) -> TagInfo | None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RemoteError("time budget exceeded")
        url = f"/v2/{name}/manifests/{quote(tag, safe='')}"
        resp = self.client.request("HEAD", url, scope=self._scope(name), headers={"Accept": MANIFEST_ACCEPT})
        if resp.status_code == 404:
            return None  # deleted since the listing
        media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip() or None
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:  # old registries may omit it on HEAD (spec: assume sha256 over the body)
            got = self.client.request("GET", url, scope=self._scope(name), headers={"Accept": MANIFEST_ACCEPT})
            digest = "sha256:" + hashlib.sha256(got.content).hexdigest()
        return TagInfo(digest, media_type)

    def _late(self, out: Listing, note: bool = True) -> bool:
        late = self.deadline is not None and time.monotonic() > self.deadline
        if late and note and "time budget exceeded" not in out.partial:
            out.partial.append("time budget exceeded")
        return late

    def has_manifests(self, repo: str, digests: Names) -> set[str]:
        name = remote_repo(self.client.base_url, repo)
        found = set()
        for digest in digests:
            resp = self.client.request("HEAD", f"/v2/{name}/manifests/{digest}", scope=self._scope(name),
                                       headers={"Accept": MANIFEST_ACCEPT})
            if resp.status_code == 200:
                found.add(digest)
        return found

    def catalog(self) -> Names:
        repos: list[str] = []
        partial: list[str] = []
        for body, _resp in self.client.pages("/v2/_catalog?n=1000", scope="registry:catalog:*", partial=partial):
            repos.extend(r for r in _items(body or {}, "repositories", "/v2/_catalog", True) if isinstance(r, str))
        if partial:
            raise RemoteError(f"catalog incomplete: {partial[0]}")
        return repos


def _missing_or_fail(resp, out: Listing) -> None:
    """A 404 on the first page: the repository is missing (NAME_UNKNOWN), or the endpoint is."""
    try:
        code = resp.json()["errors"][0]["code"]
    except Exception:  # noqa: BLE001 - a 404 without an OCI body
        code = None
    if code in ("NAME_UNKNOWN", None) and not out.tags:
        out.missing = True
    else:
        out.error = f"HTTP 404 ({code})"


def _items(body: Any, key: str, url: str, allow_null: bool = False) -> list:
    value = body.get(key) if isinstance(body, dict) else None
    if value is None and allow_null and isinstance(body, dict):
        return []
    if not isinstance(value, list):
        raise RemoteError(f"{url.split('?')[0]}: unexpected JSON (no '{key}' list)")
    return value


def _str(item: Any, key: str, url: str) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, str):
        raise RemoteError(f"{url.split('?')[0]}: unexpected JSON (an entry without '{key}')")
    return value

