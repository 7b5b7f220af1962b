"""Query parameters of the extension listings: parsed and validated, or a 400 in the envelope."""
from __future__ import annotations

from typing import Any, TypeGuard

from flask import request

from registry_ext.api.http import query_int
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.index.scan import Position
from registry_ext.oci import pagination
from registry_ext.oci.tag_filter import FilterError, build_filter
from registry_ext.services.tag_listing import SORTS, TagQuery

# fields= of the enriched tag listing, in the order a tag shows them, and of newer's tags
TAG_FIELDS = ("name", "digest", "mediaType", "size", "created", "updated", "artifactType", "platforms",
              "labels", "truncated", "imageCreated", "kind", "signature", "mirror")
NEWER_FIELDS = ("name", "digest", "updated")

# PR #579 names for the index-shaped tags/list, mapped to ours
INDEX_SORTS = {"name": "name", "created_at": "created", "updated_at": "updated", "semver": "semver"}


def bad(parameter: str, message: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"parameter": parameter}, message=message)


def page_size(default: int, maximum: int) -> int:
    n = query_int("n")
    return default if n is None else min(n, maximum)


def choice(parameter: str, allowed, default: str) -> str:
    value = request.args.get(parameter) or default
    if value not in allowed:
        raise bad(parameter, f"{parameter} must be one of {', '.join(allowed)}")
    return value


def fields(allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """The ``fields`` parameter: distinct names from ``allowed``, comma-separated (None: absent)."""
    value = request.args.get("fields")
    if not value:
        return None
    if len(value) > 256:
        raise bad("fields", "fields is longer than 256 characters")
    names = value.split(",")
    for field in names:
        if field not in allowed:
            raise bad("fields", f"unknown field {field[:64]!r}; fields are {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise bad("fields", "fields names a field twice")
    return tuple(f for f in allowed if f in names)


def project(fields_: tuple[str, ...] | None):
    """A function that keeps only ``fields_`` of a tag (the identity when None)."""
    if fields_ is None:
        return None
    return lambda tag: {f: tag[f] for f in fields_ if f in tag}


def tag_query(sort_param: str, order_param: str, sorts, default_n: int, maximum: int) -> TagQuery:
    """A TagQuery from the request's query string."""
    sort = choice(sort_param, list(sorts), "name")
    sort = sorts[sort] if isinstance(sorts, dict) else sort
    descending = choice(order_param, ("asc", "desc"), "asc") == "desc"
    args = request.args
    try:
        flt = build_filter(prefix=args.get("prefix"), glob=args.get("glob"), regex=args.get("regex"),
                           version_range=args.get("range"), kind=args.get("kind"), variant=args.get("variant"))
    except FilterError as exc:
        raise bad(exc.parameter, str(exc)) from None
    last = args.get("last") or None
    if last is not None and len(last) > 256:
        raise bad("last", "last is longer than 256 characters")
    return TagQuery(sort=sort, descending=descending, n=page_size(default_n, maximum), last=last,
                    position=cursor_position(sort, descending), digest=args.get("digest") or None, filter=flt)


def cursor_position(sort: str, descending: bool) -> Position | None:
    """The position in a `cursor` token, checked against the request's sort and order."""
    token = request.args.get("cursor")
    if not token:
        return None
    try:
        payload = pagination.decode(token)
    except pagination.TokenError as exc:
        raise bad("cursor", str(exc)) from None
    if payload.get("s") != sort or payload.get("d") != descending:
        raise bad("cursor", "cursor belongs to another sort or order")
    position = payload.get("p")
    if sort in ("name", "semver") and isinstance(position, str) and len(position) <= 1024:
        return position
    if sort in ("created", "updated") and _time_position(position):
        return int(position[0]), position[1]
    raise bad("cursor", "cursor position is malformed")


def _time_position(value: Any) -> TypeGuard[list]:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and isinstance(value[1], str) and len(value[1]) <= 256)


def cursor_token(sort: str, descending: bool, position: Position) -> str:
    return pagination.encode({"s": sort, "d": descending, "p": list(position) if isinstance(position, tuple)
                              else position})


__all__ = ["INDEX_SORTS", "NEWER_FIELDS", "SORTS", "TAG_FIELDS", "bad", "choice", "cursor_token", "fields",
           "page_size", "project", "tag_query"]
