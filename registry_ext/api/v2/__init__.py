"""The ``/v2`` API (distribution-spec v1.1.1 end-1 to end-13, plus upload cancel).

Child blueprints hold the routes; this one validates every ``<name>``
before any view runs and sets the headers every response carries.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request

from registry_ext.api import atom, discover, ext, feed, mirror_diff, oci_ext
from registry_ext.api.http import Response, registry, storage_only
from registry_ext.api.v2 import blobs, listing, manifests, proxied, uploads
from registry_ext.oci.reference import validate_name

bp = Blueprint("v2", __name__, url_prefix="/v2")


@bp.url_value_preprocessor
def _validate_name(_endpoint, values) -> None:
    if values and "name" in values:
        validate_name(values["name"])
        proxied.route_request(values)


@bp.before_request
def _index_complete() -> None:
    """While the index is being rebuilt (services/maintenance.py) the views that read it
    answer 503; storage-only views (pulls, pushes, uploads) go on."""
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, "storage_only", False):
        registry().index.state.require_complete()


@bp.after_app_request
def _api_version(resp: Response) -> Response:
    resp.headers.setdefault("Docker-Distribution-API-Version", "registry/2.0")
    return resp


@bp.get("/")
@storage_only
def base():
    """end-1: the registry implements the v2 API."""
    return Response(b"{}", content_type="application/json")


for child in (blobs.bp, uploads.bp, manifests.bp, listing.bp, oci_ext.bp, ext.bp, discover.bp,
              mirror_diff.bp, feed.bp, atom.bp):
    bp.register_blueprint(child)
