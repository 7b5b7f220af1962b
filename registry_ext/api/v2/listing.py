"""end-8 (tags/list), end-12 (referrers) and the catalog."""
from __future__ import annotations

import orjson
from flask import Blueprint, request

from registry_ext.api.ext import list_tags_index
from registry_ext.api.http import Response, conditional, link_next, query_int, registry
from registry_ext.api.v2 import proxied
from registry_ext.auth.gate import repository_filter
from registry_ext.oci.mediatypes import OCI_INDEX

bp = Blueprint("listing", __name__)


@bp.get("/<repo:name>/tags/list")
def list_tags(name: str):
    route = proxied.current_route()
    if wants_index():
        resp = list_tags_index(name)
    elif route is not None:
        resp = proxied.tags(route)
    else:
        resp = _plain_tags(name)
    resp.headers["Vary"] = "Accept"  # the body's shape depends on Accept
    return resp


def _plain_tags(name: str):
    last = request.args.get("last") or None
    page = registry().listing.tags(name, query_int("n"), last)
    resp = _json({"name": name, "tags": page.items})
    if page.next_last is not None:
        resp.headers["Link"] = link_next(f"/v2/{name}/tags/list", n=page.limit, last=page.next_last)
    return conditional(resp)


@bp.get("/_catalog")
def catalog():
    last = request.args.get("last") or None
    page = registry().listing.catalog(query_int("n"), last, repository_filter())
    resp = _json({"repositories": page.items})
    if page.next_last is not None:
        resp.headers["Link"] = link_next("/v2/_catalog", n=page.limit, last=page.next_last)
    return conditional(resp)


@bp.get("/<repo:name>/referrers/<segment:digest>")
def list_referrers(name: str, digest: str):
    route = proxied.current_route()
    if route is not None:
        upstream = proxied.referrers(route, digest)
        if upstream is not None:
            return upstream
    artifact_type = request.args.get("artifactType")
    descriptors, next_last = registry().listing.referrers(
        name, digest, artifact_type, request.args.get("last") or None)
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    resp = Response(orjson.dumps(body), content_type=OCI_INDEX)
    if artifact_type is not None:
        resp.headers["OCI-Filters-Applied"] = "artifactType"
    if next_last is not None:
        resp.headers["Link"] = link_next(f"/v2/{name}/referrers/{digest}", artifactType=artifact_type,
                                         last=next_last)
    return conditional(resp)


def wants_index() -> bool:
    """True when Accept names the OCI index type explicitly and prefers it to JSON (wildcards do not count)."""
    accept = request.accept_mimetypes
    if not any(value == OCI_INDEX for value, _q in accept):
        return False
    return accept.best_match([OCI_INDEX, "application/json"]) == OCI_INDEX


def _json(body: dict) -> Response:
    return Response(orjson.dumps(body), content_type="application/json")
