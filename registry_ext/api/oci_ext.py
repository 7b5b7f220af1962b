"""The ``_oci`` extension routes: tag history (distribution-spec PR #606, component ``tag-history``).

Semantics live in ``registry_ext.services.history``; see docs/tag-history.md.
"""
from __future__ import annotations

import orjson
from flask import Blueprint, current_app, request

from registry_ext.api.http import Response, conditional, link_next, query_int, registry, storage_only
from registry_ext.oci.mediatypes import OCI_INDEX
from registry_ext.services import history

bp = Blueprint("oci_ext", __name__)


# `path` so that an empty tag or one with a slash (`%2F`) is a 400 for an invalid tag, not a 404:
# on this endpoint a 404 would mean "extension not implemented".
@bp.get("/<repo:name>/_oci/tag-history/", defaults={"tag": ""})
@bp.get("/<repo:name>/_oci/tag-history/<path:tag>")
@storage_only  # read from storage alone: served while the index is rebuilt
def tag_history(name: str, tag: str):
    """An OCI image index of the tag's events, newest first; 200 even for an unknown repository or tag."""
    args = request.args
    query = history.HistoryQuery(n=query_int("n"), before=args.get("before"), since=args.get("since"),
                                 digest=args.get("digest"), cursor=args.get("cursor"))
    limits = current_app.config["SETTINGS"].limits
    page = history.tag_history(registry().storage, name, tag, query, limits.page_max, limits.scan_max)
    body = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": page.descriptors})
    resp = Response(body, content_type=OCI_INDEX)
    if page.next_cursor is not None:
        resp.headers["Link"] = link_next(f"/v2/{name}/_oci/tag-history/{tag}", n=page.limit,
                                         since=query.since or None, digest=query.digest or None,
                                         cursor=page.next_cursor)
    return conditional(resp)
