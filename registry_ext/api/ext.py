"""Our listing extension, ``_regext``, and the PR #579 index-shaped tags/list.

Routes (repository level, under ``/v2/<name>/_regext/``): ``tags``,
``tags/<tag>/newer``, ``digests/<digest>/tags``, ``manifests``, ``orphans``.
The name ``_regext`` cannot clash with a repository name: name components
never start with ``_``.
"""
from __future__ import annotations

from urllib.parse import urlencode

import orjson
from flask import Blueprint, current_app, request

from registry_ext.api.ext_params import (INDEX_SORTS, NEWER_FIELDS, SORTS, TAG_FIELDS, bad, cursor_token, fields,
                                        page_size, project, tag_query)
from registry_ext.api.http import Response, conditional, registry
from registry_ext.oci.mediatypes import OCI_INDEX
from registry_ext.oci.reference import is_valid_tag
from registry_ext.services.tag_listing import TagPage

EXT = "_regext"
bp = Blueprint("ext", __name__)


@bp.get(f"/<repo:name>/{EXT}/tags")
def list_tags_ext(name: str):
    limits = current_app.config["SETTINGS"].limits
    query = tag_query("sort", "order", SORTS, 100, limits.page_max)
    page = registry().tag_listing.page(name, query, project(fields(TAG_FIELDS)))
    return _paged({"name": name, "tags": page.tags}, page, query)


def list_tags_index(name: str):
    """tags/list with ``Accept: application/vnd.oci.image.index.v1+json`` (distribution-spec PR #579)."""
    limits = current_app.config["SETTINGS"].limits
    query = tag_query("sort_by", "sort_order", INDEX_SORTS, limits.page_max, limits.page_max)
    page = registry().tag_listing.page(name, query, _index_descriptor)
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": page.tags}
    return _paged(body, page, query, content_type=OCI_INDEX)


@bp.get(f"/<repo:name>/{EXT}/tags/<segment:tag>/newer")
def newer_tags(name: str, tag: str):
    if not is_valid_tag(tag):
        raise bad("tag", "not a valid tag")
    limits = current_app.config["SETTINGS"].limits
    keep = project(fields(NEWER_FIELDS))
    answer = registry().tag_listing.newer(name, tag, request.args.get("digest") or None,
                                          page_size(10, limits.page_max))  # ~140 B a tag: 10 keep the answer small
    if keep is not None:
        answer["newer"] = [keep(t) for t in answer["newer"]]
    return _json(answer)


@bp.get(f"/<repo:name>/{EXT}/digests/<segment:digest>/tags")
def digest_tags(name: str, digest: str):
    return _json({"name": name, "digest": digest, "tags": registry().tag_listing.tags_of(name, digest)})


@bp.get(f"/<repo:name>/{EXT}/manifests")
def list_manifests(name: str):
    limits = current_app.config["SETTINGS"].limits
    body, next_cursor = registry().manifest_listing.page(
        name, page_size(100, limits.page_max), request.args.get("cursor") or None,
        request.args.get("order") or "desc", request.args.get("tagged") or None)
    resp = _json({"name": name, "manifests": body})
    if next_cursor is not None:
        resp.headers["Link"] = _next_link(next_cursor)
    return conditional(resp)


@bp.get(f"/<repo:name>/{EXT}/orphans")
def orphan_signatures(name: str):
    return _json({"name": name, "orphans": registry().tag_listing.orphans(name)})


def _paged(body: dict, page: TagPage, query, content_type: str = "application/json"):
    resp = Response(orjson.dumps(body), content_type=content_type)
    if page.next is not None:
        resp.headers["Link"] = _next_link(cursor_token(query.sort, query.descending, page.next))
    return conditional(resp)


def _next_link(token: str) -> str:
    """The request's own URL with `last`/`cursor` replaced by the continuation."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("last", "cursor")]
    args.append(("cursor", token))
    return f'<{request.path}?{urlencode(args)}>; rel="next"'


def _index_descriptor(tag: dict) -> dict:
    annotations = {"org.opencontainers.image.ref.name": tag["name"],
                   "org.opencontainers.image.ref.created": tag["created"]}
    if tag.get("imageCreated"):
        annotations["org.opencontainers.image.created"] = tag["imageCreated"]
    if tag.get("pulls"):  # PR #579's optional pull annotations (strings, as annotations are)
        annotations["org.opencontainers.image.pull.count"] = str(tag["pulls"]["count"])
        annotations["org.opencontainers.image.pull.timestamp"] = tag["pulls"]["last"]
    out = {"mediaType": tag["mediaType"], "size": tag["size"], "digest": tag["digest"]}
    if tag.get("artifactType"):
        out["artifactType"] = tag["artifactType"]
    out["annotations"] = annotations
    return out


def _json(body) -> Response:
    return conditional(Response(orjson.dumps(body), content_type="application/json"))

