"""URL converters: repository names contain slashes, so they cannot be plain segments.

The name converter matches any slash-separated path lazily, so the fixed
suffix of each route (``/blobs/uploads/``, ``/manifests/``, ``/tags/list``)
decides. It accepts empty components too (the URL map does not merge
slashes): the view validates every name against the spec grammar, so an
invalid name gets NAME_INVALID instead of a bare 404 or a redirect.
"""
from __future__ import annotations

from werkzeug.routing import BaseConverter


class RepoNameConverter(BaseConverter):
    regex = r"[^/]*(?:/[^/]*)*?"
    part_isolating = False
    weight = 200


class SegmentConverter(BaseConverter):
    """One path segment (a tag, a digest or an upload id); validated by the view."""

    regex = r"[^/]+"
