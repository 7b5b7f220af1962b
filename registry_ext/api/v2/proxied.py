"""The pull-through mirror's side of the ``/v2`` views (registry_ext/proxy/).

Every ``/v2/<name>/...`` request is routed first (``route_request``, from the blueprint's URL
preprocessor, before authorisation): a request for an upstream has its ``name`` replaced by the
local repository ``<upstream>/<repository>``, so authorisation asks for ``pull`` there, and every
read view (history, enriched listings, referrers) shows the cached content. Manifests, blobs,
plain tag lists and referrers then go through the mirror (``manifest``, ``blob``, ``tags``,
``referrers``). Writes through a
route are refused (DENIED). Proxied answers carry ``OCI-Namespace`` (distribution-spec "Registry
Proxying"), and ``X-Regext-Mirror: stale`` with ``Warning: 110`` when the upstream could not confirm
a cached manifest.

Upstream failures become OCI errors here (``upstream_error``): unavailable → 503 (429
TOOMANYREQUESTS when the upstream limits us) with ``Retry-After``; refused or unverifiable → 502;
not found → 404.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask, current_app, g, request

from registry_ext.api.http import Response, conditional, link_next, query_int, registry
from registry_ext.config import Settings
from registry_ext.errors import ErrorCode, RegistryError, render
from registry_ext.oci.digest import Digest, parse_digest
from registry_ext.oci.mediatypes import OCI_INDEX
from registry_ext.proxy.source import UpstreamError, UpstreamNotFound, UpstreamUnavailable

if TYPE_CHECKING:  # the mirror's modules (and requests) load only when [proxy] names upstreams
    from registry_ext.proxy.manifests import ProxyManifests
    from registry_ext.proxy.routing import Route

log = logging.getLogger(__name__)
EXTENSION = "proxy"
FILLS = "proxy_fills"
RETRY_AFTER_DEFAULT = 5
_READS = ("GET", "HEAD")


def init_app(app: Flask, settings: Settings) -> None:
    """The mirror, when ``[proxy]`` names upstreams; its error handler and response headers."""
    if not settings.proxy.upstreams:
        return
    from registry_ext.proxy.blobfill import BlobFills
    from registry_ext.proxy.manifests import ProxyManifests
    from registry_ext.proxy.routing import Router
    from registry_ext.proxy.status import observe_upstreams

    reg = app.extensions["registry"]
    app.extensions[EXTENSION] = ProxyManifests(Router(settings.proxy), reg.manifests, reg.index.mirror,
                                               settings.limits.manifest_max_bytes)
    app.extensions[FILLS] = BlobFills.from_registry(reg)
    observe_upstreams(app.extensions[EXTENSION].clients.values(), reg.index.upstreams)  # for the UI
    _sync(app, settings)
    app.register_error_handler(UpstreamError, upstream_error)
    app.after_request(_headers)


def _sync(app: Flask, settings: Settings) -> None:
    """The scheduled sync (proxy/sync.py) in the maintenance ticks, when an upstream has ``sync_interval``."""
    from registry_ext.index.leases import Leases
    from registry_ext.proxy.sync import MirrorSync, has_blob

    reg = app.extensions["registry"]
    sync = MirrorSync(app.extensions[EXTENSION], app.extensions[FILLS], reg.index.mirror, Leases(reg.index.client),
                      has_blob(reg.storage), settings.limits.page_max)
    if sync.upstreams:
        app.extensions["mirror_sync"] = sync
        app.extensions["maintenance"].steps.append(sync.tick)


def _proxy() -> ProxyManifests | None:
    return current_app.extensions.get(EXTENSION)


def route_request(values: dict[str, Any]) -> None:
    """Route a request for ``values["name"]``; a routed one reads the local repository instead.

    Raises:
        RegistryError(NAME_INVALID, NAME_UNKNOWN, DENIED)
    """
    proxy = _proxy()
    if proxy is None:
        return
    name = values["name"]
    route = proxy.router.route(name, request.args.get("ns"), request.host)
    if request.method not in _READS:
        proxy.router.refuse_write(name, route)
    if route is not None:
        g.proxy_route, g.proxy_asked = route, name
        values["name"] = route.local_repo


def current_route() -> Route | None:
    """The route of this request (None: local)."""
    return g.get("proxy_route")


def manifest(route: Route, reference: str) -> Response:
    """GET/HEAD a manifest through the mirror."""
    proxy = _proxy()
    assert proxy is not None
    head = request.method == "HEAD"
    served = proxy.get(route, reference, with_body=not head)
    stored = served.manifest
    if not head:
        registry().manifests.pulled(route.local_repo, reference, stored.digest)
    headers = {"Docker-Content-Digest": stored.digest, "ETag": f'"{stored.digest}"'}
    if served.stale:
        g.proxy_stale = served.stale
    resp = Response(stored.data or b"", headers=headers, content_type=stored.media_type)
    resp.content_length = stored.size
    return resp


def blob(route: Route, digest: str) -> Response | None:
    """Prepare a blob pull: a blob in the local repository is served by the usual view (None); one
    stored for another repository is linked once the upstream confirms it has it (a HEAD: a digest
    alone must not open another repository's private blob); HEAD of one not stored asks the upstream
    (nothing is fetched); GET streams it from the fill (proxy/blobfill.py) while it is stored.

    Raises:
        RegistryError(DIGEST_INVALID, BLOB_UNKNOWN), UpstreamError
    """
    parsed = parse_digest(digest)
    reg = registry()
    stored = reg.storage.blobs.size(parsed) is not None
    if stored and reg.storage.repos.has_blob(route.local_repo, parsed):
        return None
    proxy = _proxy()
    assert proxy is not None
    if not route.upstream.on_demand:  # served from the cache only
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": digest, "upstream": route.upstream.name},
                            message="not in the cache, and the upstream is not pulled on demand")
    try:
        if stored:
            proxy.client(route).blob_size(route.upstream_repo, str(parsed))
            reg.blobs.link(route.local_repo, parsed)
            return None
        if request.method != "HEAD":
            return _filled(proxy, route, parsed)
        size = proxy.client(route).blob_size(route.upstream_repo, str(parsed))
    except UpstreamNotFound:
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": digest, "upstream": route.upstream.name}) from None
    resp = Response(b"", headers={"Docker-Content-Digest": str(parsed), "ETag": f'"{parsed}"'},
                    content_type="application/octet-stream")
    if size is not None:
        resp.content_length = size
    return resp


def _filled(proxy: ProxyManifests, route: Route, digest: Digest) -> Response:
    """The blob's body as the fill delivers it (a Range is not applied to a blob not stored yet: the
    whole blob, 200). A fill failing mid-body raises out of the body: the server cuts the connection,
    so a client never takes a short body for the blob.

    Raises:
        UpstreamError: before the first byte.
    """
    fills = current_app.extensions[FILLS]
    fill = fills.serve(proxy.client(route).source(route.upstream_repo), str(digest), route.local_repo)

    def body():
        try:
            yield from fill.chunks
        finally:
            fill.close()

    resp = Response(body(), headers={"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'},
                    content_type="application/octet-stream", direct_passthrough=True)
    if fill.size is not None:
        resp.content_length = fill.size
    return resp


def tags(route: Route) -> Response:
    """tags/list from the upstream (sorted, ``n``/``last`` applied here), or from the cache when it is
    unavailable."""
    proxy = _proxy()
    assert proxy is not None
    limits = current_app.config["SETTINGS"].limits
    n, last = query_int("n"), request.args.get("last") or None
    found = proxy.tags(route, limits.page_max)
    if found is None:
        if route.upstream.on_demand:
            g.proxy_stale = "upstream unavailable: tags from the cache"
        page = registry().listing.tags(route.local_repo, n, last)
        items, next_last, limit = page.items, page.next_last, page.limit
    else:
        limit = min(n if n is not None else limits.page_max, limits.page_max)
        after = [t for t in found if last is None or t > last]
        items = after[:limit]
        next_last = items[-1] if len(after) > limit and items else None
    resp = Response(orjson.dumps({"name": g.proxy_asked, "tags": items}), content_type="application/json")
    if next_last is not None:
        resp.headers["Link"] = link_next(request.path, n=limit, last=next_last, ns=request.args.get("ns"))
    return conditional(resp)


def referrers(route: Route, digest: str) -> Response | None:
    """The referrers of ``digest`` from the upstream's referrers API (its first page, no ``Link``);
    None: the usual view answers from the cache (no such API upstream, the upstream unavailable, or
    a next page of the cache's own listing asked with ``last``).

    Raises:
        RegistryError(DIGEST_INVALID), UpstreamRefused
    """
    proxy = _proxy()
    assert proxy is not None
    parsed = str(parse_digest(digest))
    if request.args.get("last"):
        return None
    artifact_type = request.args.get("artifactType")
    found, stale = proxy.referrers(route, parsed, artifact_type)
    if found is None:
        if stale:
            g.proxy_stale = f"upstream unavailable: referrers from the cache ({stale[:200]})"
        return None
    resp = Response(orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}),
                    content_type=OCI_INDEX)
    if artifact_type is not None:
        resp.headers["OCI-Filters-Applied"] = "artifactType"
    return conditional(resp)


def upstream_error(exc: UpstreamError) -> Response:
    """An upstream failure as an OCI error (logged with its reason)."""
    log.warning("%s (%s %s)", exc, request.method, request.path)
    detail = {"upstream": exc.upstream, "reason": exc.reason[:300]}
    if isinstance(exc, UpstreamNotFound):
        return render(RegistryError(ErrorCode.NAME_UNKNOWN, detail, message="not found upstream"))
    if isinstance(exc, UpstreamUnavailable):
        wait = {"Retry-After": str(max(1, min(int(exc.retry_after or RETRY_AFTER_DEFAULT), 3600)))}
        if exc.status == 429:
            return render(RegistryError(ErrorCode.TOOMANYREQUESTS, detail, headers=wait,
                                        message="the upstream is limiting requests and nothing is cached"))
        return render(RegistryError(ErrorCode.UNSUPPORTED, detail, status=503, headers=wait,
                                    message="the upstream is unavailable and nothing is cached"))
    return render(RegistryError(ErrorCode.UNSUPPORTED, detail, status=502,
                                message="the upstream's answer was refused (nothing was stored)"))


def _headers(resp: Response) -> Response:
    route = g.get("proxy_route")
    if route is not None:
        resp.headers["OCI-Namespace"] = route.namespace
        if g.get("proxy_stale"):
            resp.headers["X-Regext-Mirror"] = "stale"
            resp.headers["Warning"] = '110 - "Response is Stale"'
    return resp
