"""Extension discovery (distribution-spec ``extensions/_oci.md``): what this registry adds.

``GET /v2/_oci/ext/discover`` lists registry-level and repository-level
endpoints with ``<name>`` placeholders; ``GET /v2/<name>/_oci/ext/discover``
lists the same with the repository's name filled in.

Each extension's ``url`` must lead to its documentation. ``_oci`` is defined
by the distribution-spec itself (``OCI_EXT_SPEC``). Where this registry's own
documentation is published only the operator knows: ``server.docs_url`` is
that base, and ``_regext``'s ``url`` is its ``extensions.md``. Unset, the
field is left out rather than filled with a link that leads nowhere (a path
in this source tree, which no client can open).
"""
from __future__ import annotations

import orjson
from flask import Blueprint, current_app

from registry_ext.api.http import Response, conditional, storage_only

bp = Blueprint("discover", __name__)
OCI_EXT_SPEC = "https://github.com/opencontainers/distribution-spec/blob/main/extensions/_oci.md"

EXTENSIONS = (
    {
        "name": "_regext",
        "description": "Enriched tag and manifest listings: sorted by semver, time or name, filtered, with "
                       "digests, media types, timestamps and platforms; newer-than queries; digest to tags; "
                       "orphaned signature tags; mirror-diff against configured remotes. tags/list also answers "
                       "Accept: application/vnd.oci.image.index.v1+json (distribution-spec PR #579). An update feed "
                       "across repositories with opaque cursors and long-polls (docs/updates.md), and Atom feeds.",
        "doc": "extensions.md",  # under server.docs_url
        "endpoints": ("/v2/<name>/_regext/tags", "/v2/<name>/_regext/tags/<tag>/newer",
                      "/v2/<name>/_regext/digests/<digest>/tags", "/v2/<name>/_regext/manifests",
                      "/v2/<name>/_regext/orphans", "/v2/<name>/_regext/mirror-diff",
                      "/v2/_regext/updates", "/v2/_regext/feed.atom", "/v2/<name>/_regext/feed.atom"),
    },
    {
        "name": "_oci",
        "description": "Tag history (distribution-spec PR #606) and extension discovery.",
        "url": OCI_EXT_SPEC,
        "endpoints": ("/v2/_oci/ext/discover", "/v2/<name>/_oci/ext/discover",
                      "/v2/<name>/_oci/tag-history/<tag>"),
    },
)


def _render(name: str | None) -> Response:
    docs_url = current_app.config["SETTINGS"].server.docs_url
    extensions = []
    for ext in EXTENSIONS:
        endpoints = list(ext["endpoints"])
        if name is not None:
            endpoints = [e.replace("<name>", name) for e in endpoints if "<name>" in e]
        entry = {key: value for key, value in ext.items() if key != "doc"}
        if "doc" in ext and docs_url:
            entry["url"] = docs_url + ext["doc"]
        extensions.append({**entry, "endpoints": endpoints})
    return conditional(Response(orjson.dumps({"extensions": extensions}), content_type="application/json"))


@bp.get("/_oci/ext/discover")
@storage_only
def discover():
    return _render(None)


@bp.get("/<repo:name>/_oci/ext/discover")
@storage_only
def discover_repository(name: str):
    return _render(name)
