"""Response and request utilities shared by the views (no registry semantics)."""
from __future__ import annotations

import hashlib
import re
from typing import BinaryIO
from urllib.parse import urlencode

from flask import Response as FlaskResponse, current_app, request
from werkzeug.wsgi import wrap_file

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.services import Registry

_ASCII_DIGITS = re.compile(r"[0-9]+")


class Response(FlaskResponse):
    """Responses without a body carry no Content-Type (Flask's default is text/html)."""

    default_mimetype = None


def conditional(resp: Response) -> Response:
    """Add an ETag and answer ``If-None-Match`` with 304.

    The ETag hashes the body and the Link header: a page whose body is
    unchanged may still gain or lose its next page.
    """
    link = resp.headers.get("Link", "")
    resp.set_etag(hashlib.sha256(resp.get_data() + link.encode()).hexdigest()[:32])
    resp.make_conditional(request)  # in place (it returns the same response)
    return resp


def registry() -> Registry:
    return current_app.extensions["registry"]


def storage_only(view):
    """Mark a view that needs no index reads: it keeps serving while the index is rebuilt."""
    view.storage_only = True
    return view


def query_int(name: str) -> int | None:
    """A non-negative integer query parameter (None when absent).

    Raises:
        RegistryError(UNSUPPORTED, 400): not a non-negative integer.
    """
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not _ASCII_DIGITS.fullmatch(raw):
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": name, "value": raw[:50]},
                            message=f"query parameter {name} must be a non-negative integer")
    return int(raw) if len(raw) <= 18 else 10**18  # huge values are clamped by the caller


def content_length() -> int | None:
    return request.content_length


def link_next(path: str, **params) -> str:
    """An RFC 8288 ``Link`` header value pointing at the next page."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f'<{path}?{query}>; rel="next"'


def read_limited(limit: int) -> bytes:
    """Read the request body, refusing more than ``limit`` bytes (413).

    Raises:
        RegistryError(MANIFEST_INVALID, 413)
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    return data


def _too_large(limit: int) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, {"limit": limit}, status=413,
                         message=f"manifest exceeds {limit} bytes")


class BoundedFile:
    """A read-only view of ``length`` bytes of an open file from its current offset.

    ``fileno()`` stays available so gunicorn can use sendfile (bounded by
    Content-Length); other servers read through ``read``.
    """

    def __init__(self, handle: BinaryIO, length: int):
        self.handle = handle
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self.handle.read(size)
        self.remaining -= len(data)
        return data

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self.handle.close()


def file_response(handle: BinaryIO, start: int, length: int, status: int, headers: dict) -> Response:
    """Stream ``length`` bytes of ``handle`` from ``start``."""
    handle.seek(start)
    # werkzeug types the file as IO[bytes]; it calls read() and close() (gunicorn: fileno()) only
    body = wrap_file(request.environ, BoundedFile(handle, length), buffer_size=1 << 20)  # type: ignore[arg-type]
    resp = Response(body, status=status, headers=headers, direct_passthrough=True,
                    content_type="application/octet-stream")
    resp.content_length = length
    return resp


def stream_response(stream: BinaryIO, length: int, status: int, headers: dict) -> Response:
    """Stream ``length`` bytes of a non-file stream (an object store's reader) in 1 MiB reads."""
    def chunks():
        with stream:
            left = length
            while left > 0:
                data = stream.read(min(left, 1 << 20))
                if not data:
                    raise OSError(f"blob stream ended {left} bytes early")  # cut the connection
                left -= len(data)
                yield data

    resp = Response(chunks(), status=status, headers=headers, direct_passthrough=True,
                    content_type="application/octet-stream")
    resp.content_length = length
    return resp


def redirect_response(url: str, headers: dict) -> Response:
    """307 to where the client fetches the blob itself (a presigned object store URL)."""
    resp = Response(b"", status=307, headers=headers)
    resp.headers["Location"] = url
    return resp


def accel_response(uri: str, headers: dict) -> Response:
    """Hand a blob to nginx: ``X-Accel-Redirect`` to ``uri``, an internal location.

    nginx drops this response's (empty) body, serves the file with sendfile
    and applies the client's ``Range`` itself (one range: ``max_ranges 1``
    in deploy/nginx.conf, as ``parse_range``). It keeps only a few upstream
    headers on an internal redirect, so its location re-adds
    ``Docker-Content-Digest`` and ``ETag`` from ``$upstream_http_*``.
    """
    resp = Response(b"", status=200, headers=headers, content_type="application/octet-stream")
    resp.headers["X-Accel-Redirect"] = uri
    return resp
