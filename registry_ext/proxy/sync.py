"""The scheduled sync of an upstream (``sync_interval``): copy what its rules name before anyone pulls it.

Every maintenance tick (services/maintenance.py) each worker looks at the upstreams with a
``sync_interval``; one that last finished a sync that long ago (index/mirror_state.py) is synced by
the worker that takes its lease (index/leases.py: one worker on one host; refreshed while it runs).
A sync copies, for each repository ``repositories`` names without a wildcard, every upstream tag the
content rules allow (``tags``, ``versions``; at most ``limits.page_max``): the manifest as a pull
would (proxy/manifests.py: HEAD first once ``manifest_ttl`` passed, exact bytes, the local tag moves
with the upstream), every child of an index, and every blob they need (proxy/blobfill.py: the same
one-fetch-per-blob fills as pulls). It does so whatever ``on_demand`` says, so a cache-only upstream
(``on_demand = false``) can be kept current by it. A failure of one tag is logged and the sync goes
on; the next one tries again. Syncs do not count as pulls (pull times drive cache eviction).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Callable

from registry_ext.clock import now_ms
from registry_ext.errors import RegistryError
from registry_ext.index.leases import Leases
from registry_ext.index.mirror_state import MirrorState
from registry_ext.oci.digest import parse_digest
from registry_ext.oci.manifest import parse_manifest
from registry_ext.proxy.blobfill import BlobFills
from registry_ext.proxy.config import Upstream
from registry_ext.proxy.manifests import ProxyManifests
from registry_ext.proxy.routing import Route
from registry_ext.proxy.source import UpstreamError

log = logging.getLogger(__name__)
MAX_MANIFESTS = 10_000  # manifests one repository's sync walks (tags, index children)


@dataclasses.dataclass
class SyncReport:
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    failures: int = 0


class MirrorSync:
    def __init__(self, proxy: ProxyManifests, fills: BlobFills, state: MirrorState, leases: Leases,
                 has_blob: Callable[[str, str], bool], page_max: int):
        self.proxy = proxy
        self.fills = fills
        self.state = state
        self.leases = leases
        self.has_blob = has_blob  # (local repository, digest) -> linked there already
        self.page_max = page_max
        self.upstreams = [u for u in proxy.router.upstreams.values() if u.sync_interval]
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """From the maintenance thread: run ``run_due`` in a thread of its own (a sync takes long), unless
        the last one still runs."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._work, name="mirror-sync", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self.run_due()
        except Exception:  # noqa: BLE001 - a failed sync must not end the worker; the next tick retries
            log.exception("mirror sync failed")

    def run_due(self) -> None:
        """Sync every upstream that is due and whose lease is free. Raises: redis.RedisError."""
        for upstream in self.upstreams:
            if not self._due(upstream):
                continue
            with self.state.sync_lease(upstream.name, self.leases) as lease:
                if lease is None or not self._due(upstream):  # another worker has it, or just did it
                    continue
                report = self.sync(upstream)
                self.state.record_sync(upstream.name, now_ms())
                log.warning("mirror sync of %s: %s", upstream.name, dataclasses.asdict(report))

    def _due(self, upstream: Upstream) -> bool:
        last = self.state.synced(upstream.name)
        return last is None or now_ms() - last >= upstream.sync_interval * 1000

    def sync(self, upstream: Upstream) -> SyncReport:
        """Copy what the upstream's rules name (module docstring)."""
        report = SyncReport()
        for repo in upstream.sync_repositories:
            route = Route(upstream, repo, f"{upstream.name}/{repo}", upstream.hosts[0])
            try:
                tags = self.proxy.upstream_tags(route, self.page_max)
            except (UpstreamError, RegistryError) as exc:
                log.warning("mirror sync of %s: tags of %s: %s", upstream.name, repo, exc)
                report.failures += 1
                continue
            seen: set[str] = set()
            for tag in tags:
                try:
                    self._copy(route, tag, seen, report)
                    report.tags += 1
                except (UpstreamError, RegistryError) as exc:
                    log.warning("mirror sync of %s: %s:%s: %s", upstream.name, repo, tag, exc)
                    report.failures += 1
        return report

    def _copy(self, route: Route, reference: str, seen: set[str], report: SyncReport) -> None:
        """A manifest, then its children and blobs (each digest once per repository)."""
        stored = self.proxy.get(route, reference, sync=True).manifest
        if stored.digest in seen or len(seen) >= MAX_MANIFESTS:
            return
        seen.add(stored.digest)
        report.manifests += 1
        manifest = parse_manifest(stored.data or b"", stored.media_type)
        for child in manifest.children:
            self._copy(route, str(child.digest), seen, report)
        for blob in manifest.required_blobs():
            digest = str(blob.digest)
            if self.has_blob(route.local_repo, digest):
                continue
            fill = self.fills.serve(self.proxy.client(route).source(route.upstream_repo), digest, route.local_repo)
            try:
                for _chunk in fill.chunks:
                    pass
            finally:
                fill.close()
            report.blobs += 1


def has_blob(storage) -> Callable[[str, str], bool]:
    """Whether a blob is stored and linked into a repository (storage: registry.storage)."""
    def check(repository: str, digest: str) -> bool:
        d = parse_digest(digest)
        return storage.blobs.size(d) is not None and storage.repos.has_blob(repository, d)
    return check
