"""Extension discovery (distribution-spec ``extensions/_oci.md``): what this registry adds.

``GET /v2/_oci/ext/discover`` lists registry-level and repository-level
endpoints with ``<name>`` placeholders; ``GET /v2/<name>/_oci/ext/discover``
lists the same with the repository's name filled in.
"""
from __future__ import annotations

import orjson
from flask import Blueprint

from registry_ext.api.http import Response, conditional, storage_only

bp = Blueprint("discover", __name__)

EXTENSIONS = (
    {
        "name": "_regext",
        "description": "Enriched tag and manifest listings: sorted by semver, time or name, filtered, with "
                       "digests, media types, timestamps and platforms; newer-than queries; digest to tags; "
                       "orphaned signature tags; mirror-diff against configured remotes. tags/list also answers Accept: "
                       "application/vnd.oci.image.index.v1+json (distribution-spec PR #579). An update feed across "
                       "repositories with opaque cursors and long-polls (docs/updates.md), and Atom feeds.",
        "url": "docs/extensions.md",
        "endpoints": ("/v2/<name>/_regext/tags", "/v2/<name>/_regext/tags/<tag>/newer",
                      "/v2/<name>/_regext/digests/<digest>/tags", "/v2/<name>/_regext/manifests",
                      "/v2/<name>/_regext/orphans", "/v2/<name>/_regext/mirror-diff",
                      "/v2/_regext/updates", "/v2/_regext/feed.atom", "/v2/<name>/_regext/feed.atom"),
    },
    {
        "name": "_oci",
        "description": "Tag history (distribution-spec PR #606) and extension discovery.",
        "url": "docs/tag-history.md",
        "endpoints": ("/v2/_oci/ext/discover", "/v2/<name>/_oci/ext/discover",
                      "/v2/<name>/_oci/tag-history/<tag>"),
    },
)


def _render(name: str | None) -> Response:
    extensions = []
    for ext in EXTENSIONS:
        endpoints = list(ext["endpoints"])
        if name is not None:
            endpoints = [e.replace("<name>", name) for e in endpoints if "<name>" in e]
        extensions.append({**ext, "endpoints": endpoints})
    return conditional(Response(orjson.dumps({"extensions": extensions}), content_type="application/json"))


@bp.get("/_oci/ext/discover")
@storage_only
def discover():
    return _render(None)


@bp.get("/<repo:name>/_oci/ext/discover")
@storage_only
def discover_repository(name: str):
    return _render(name)
