"""Manifests and tag lists through the mirror: by TTL, HEAD first, exact bytes, stale when down.

- By digest: from the local repository when there, else fetched, verified and stored (exact bytes,
  the upstream's media type: nothing converted, digests never change).
- By tag: served locally while the upstream confirmed it less than ``manifest_ttl`` seconds ago
  (index/mirror_state.py); after that, a HEAD upstream (Docker Hub does not count HEADs as pulls):
  the same digest refreshes the confirmation; another one (or none said) is a GET, stored and the
  local tag moved, which tag history, the listings and the feed see like a push
  (``ManifestService.store_fetched``). Only what the client asked for is fetched: an index's
  children come when a client asks for them by digest.
- Upstream unavailable (down, 5xx, 429, too slow): the cached copy is served, marked stale; with
  none the error goes to the client. An upstream 404 is a 404, the cached copy is kept.
- Tag lists come from the upstream (paged, at most ``limits.page_max``), else from the cache.
- Content rules (proxy/rules.py): a tag outside the upstream's ``tags``/``versions`` is 404
  MANIFEST_UNKNOWN, never asked upstream nor served from the cache; the upstream's tag lists are
  filtered by them. By digest is always allowed (index children and referrers have no tags).
- ``on_demand = false``: nothing is asked upstream for pulls; what is cached is served (as fresh),
  anything else is unknown (content arrives by sync or by pushes with ``allow_push``).
- Referrers come from the upstream's referrers API (its first page, bounded like a manifest), else
  (no such API: a 404, or the upstream unavailable) from the cache: the referrers of what was pulled.
"""
from __future__ import annotations

import dataclasses
import logging

from registry_ext.clock import now_ms
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index.mirror_state import MirrorState
from registry_ext.oci.digest import is_digest, parse_digest
from registry_ext.oci.reference import is_valid_tag
from registry_ext.proxy.routing import Route, Router
from registry_ext.proxy.source import UpstreamNotFound, UpstreamRefused, UpstreamUnavailable
from registry_ext.proxy.upstream import FetchedManifest, UpstreamClient
from registry_ext.services.manifests import ManifestService, StoredManifest

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Served:
    manifest: StoredManifest
    stale: str = ""  # why the cached copy is served without the upstream's confirmation ("": fresh)


class ProxyManifests:
    def __init__(self, router: Router, manifests: ManifestService, state: MirrorState, manifest_max_bytes: int):
        self.router = router
        self.manifests = manifests
        self.state = state
        self.clients = {name: UpstreamClient(up, manifest_max_bytes) for name, up in router.upstreams.items()}

    def client(self, route: Route) -> UpstreamClient:
        return self.clients[route.upstream.name]

    def get(self, route: Route, reference: str, with_body: bool = True, sync: bool = False) -> Served:
        """The manifest ``reference`` names upstream, through the cache (``sync``: for the scheduled
        sync, which asks the upstream whatever ``on_demand`` says).

        Raises:
            RegistryError(MANIFEST_UNKNOWN, DIGEST_INVALID), UpstreamError (none cached to serve instead)
        """
        if is_digest(reference):
            parse_digest(reference)
            local = self._local(route, reference, with_body)
            if local is not None:
                return Served(local)
            if not sync:
                self._may_dial(route, reference)
            fetched = self._fetch(route, reference)
            return Served(self._stored(route, None, fetched, with_body))
        if not is_valid_tag(reference):
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"reference": reference[:200]})
        if not route.upstream.rules.allows(reference):
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"reference": reference, "upstream": route.upstream.name},
                                message="the tag is outside the upstream's mirror rules (tags/versions)")
        return self._by_tag(route, reference, with_body, sync)

    def _may_dial(self, route: Route, reference: str) -> None:
        """Raises: RegistryError(MANIFEST_UNKNOWN) when the upstream is served from the cache only."""
        if not route.upstream.on_demand:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"reference": reference[:200],
                                                             "upstream": route.upstream.name},
                                message="not in the cache, and the upstream is not pulled on demand")

    def _by_tag(self, route: Route, tag: str, with_body: bool, sync: bool = False) -> Served:
        local = self._local(route, tag, with_body)
        if not sync:
            if local is not None and not route.upstream.on_demand:
                return Served(local)
            self._may_dial(route, tag)
        checked = self.state.checked(route.local_repo, tag) if local is not None else None
        if local is not None and checked is not None and now_ms() - checked < route.upstream.manifest_ttl * 1000:
            return Served(local)
        client = self.client(route)
        try:
            if local is not None:
                head = client.manifest(route.upstream_repo, tag, head=True)
                if head.digest == local.digest:
                    self.state.confirm(route.local_repo, tag, now_ms())
                    return Served(local)
            fetched = self._fetch(route, tag)
        except UpstreamUnavailable as exc:
            if local is None:
                raise
            log.warning("serving %s:%s stale from the cache: %s", route.local_repo, tag, exc)
            return Served(local, stale=exc.reason)
        stored = self._stored(route, tag, fetched, with_body)
        self.state.confirm(route.local_repo, tag, now_ms())
        return Served(stored)

    def _fetch(self, route: Route, reference: str) -> FetchedManifest:
        try:
            return self.client(route).manifest(route.upstream_repo, reference)
        except UpstreamNotFound:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"reference": reference[:200],
                                                             "upstream": route.upstream.name},
                                message="manifest unknown to the upstream") from None

    def _local(self, route: Route, reference: str, with_body: bool) -> StoredManifest | None:
        try:
            return self.manifests.get(route.local_repo, reference, with_body)
        except RegistryError as exc:
            if exc.code in (ErrorCode.MANIFEST_UNKNOWN, ErrorCode.NAME_UNKNOWN):
                return None
            raise

    def _stored(self, route: Route, tag: str | None, fetched: FetchedManifest, with_body: bool) -> StoredManifest:
        """Store a fetched manifest (verified by the client) and read it back as a local one.

        Raises:
            UpstreamRefused: the bytes are not a manifest (nothing stored).
        """
        assert fetched.data is not None and fetched.digest is not None
        try:
            self.manifests.store_fetched(route.local_repo, tag, fetched.data, fetched.media_type or None,
                                         parse_digest(fetched.digest))
        except RegistryError as exc:
            if exc.code != ErrorCode.MANIFEST_INVALID:
                raise
            raise UpstreamRefused(route.upstream.name, f"not a manifest: {exc.message}") from None
        log.info("mirrored %s@%s from upstream %s", route.local_repo, fetched.digest, route.upstream.name)
        return self.manifests.get(route.local_repo, fetched.digest, with_body)

    def tags(self, route: Route, limit: int) -> list[str] | None:
        """The upstream's tags allowed by its rules (sorted, at most ``limit`` read); None when it is
        unavailable or not pulled on demand (serve the cache).

        Raises:
            RegistryError(NAME_UNKNOWN): the upstream does not know the repository.
            UpstreamRefused
        """
        if not route.upstream.on_demand:
            return None
        try:
            return self.upstream_tags(route, limit)
        except UpstreamNotFound:
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": route.upstream_repo,
                                                         "upstream": route.upstream.name}) from None
        except UpstreamUnavailable as exc:
            log.warning("tags of %s from the cache: %s", route.local_repo, exc)
            return None

    def upstream_tags(self, route: Route, limit: int) -> list[str]:
        """The upstream's tags its rules allow, sorted. Raises: UpstreamError."""
        rules = route.upstream.rules
        return sorted(t for t in self.client(route).tags(route.upstream_repo, limit) if rules.allows(t))

    def referrers(self, route: Route, digest: str, artifact_type: str | None) -> tuple[list[dict] | None, str]:
        """The upstream's referrers of ``digest`` (filtered by ``artifact_type``), or None to serve the
        cache's: the upstream has no referrers API (""), or is unavailable (the reason: stale).

        Raises:
            UpstreamRefused
        """
        if not route.upstream.on_demand:
            return None, ""  # served from the cache only
        try:
            found, applied = self.client(route).referrers(route.upstream_repo, digest, artifact_type)
        except UpstreamNotFound:
            return None, ""  # distribution 2.8 and other registries without the API: 404
        except UpstreamUnavailable as exc:
            log.warning("referrers of %s@%s from the cache: %s", route.local_repo, digest, exc)
            return None, exc.reason
        if artifact_type is not None and not applied:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found, ""
