"""end-2 and end-10: blob GET/HEAD (with Range) and DELETE."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from registry_ext import metrics
from registry_ext.api.http import (Response, accel_response, file_response, redirect_response, registry, storage_only,
                                   stream_response)
from registry_ext.api.v2 import proxied
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci.ranges import RangeError, parse_range
from registry_ext.services.manifests import deletes_disabled
from registry_ext.storage.layout import blob_relpath

bp = Blueprint("blobs", __name__)


@bp.route("/<repo:name>/blobs/<segment:digest>", methods=["GET", "HEAD"])
@storage_only
def get_blob(name: str, digest: str):
    route = proxied.current_route()
    if route is not None:
        answer = proxied.blob(route, digest)
        if answer is not None:
            return answer
    reg = registry()
    parsed, size = reg.blobs.locate(name, digest)
    headers = {"Docker-Content-Digest": str(parsed), "Accept-Ranges": "bytes", "ETag": f'"{parsed}"'}
    try:
        wanted = parse_range(_range_header(headers["ETag"]), size)
    except RangeError as exc:
        raise RegistryError(ErrorCode.UNSUPPORTED, {"size": size}, status=416, message=str(exc),
                            headers={"Content-Range": f"bytes */{size}"}) from None
    start, end, status = 0, size - 1, 200
    if wanted is not None:
        (start, end), status = wanted, 206
    accel = current_app.config["SETTINGS"].server.x_accel_prefix
    if accel and request.method == "GET":  # the URI comes from the verified digest only
        metrics.note_offloaded(end - start + 1)
        del headers["Accept-Ranges"]  # nginx adds its own
        return accel_response(f"{accel}/{blob_relpath(parsed)}", headers)  # nginx applies Range
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        resp = Response(b"", status=status, headers=headers, content_type="application/octet-stream")
        resp.content_length = end - start + 1
        return resp
    if reg.storage.on_objects:
        return _from_objects(reg, parsed, start, end - start + 1, status, headers)
    handle = reg.storage.blobs.open(parsed)
    if handle is None:
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": digest})
    return file_response(handle, start, end - start + 1, status, headers)


def _from_objects(reg, digest, start: int, length: int, status: int, headers: dict) -> Response:
    """A blob on an object store: a redirect to a presigned URL when configured (storage.s3.redirect;
    the store applies Range itself), else streamed through."""
    url = reg.storage.blobs.redirect_url(digest)
    if url is not None:
        metrics.note_offloaded(length)
        return redirect_response(url, {"Docker-Content-Digest": headers["Docker-Content-Digest"]})
    stream = reg.storage.blobs.open_range(digest, start, length)
    if stream is None:
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(digest)})
    return stream_response(stream, length, status, headers)


def _range_header(etag: str) -> str | None:
    """The ``Range`` to apply: none when an ``If-Range`` does not name this blob's ETag exactly.

    As nginx does for the blobs it sends (deploy/nginx.conf drops their
    Last-Modified, so an If-Range date never matches either).
    """
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != etag:
        return None
    return request.headers.get("Range")


@bp.delete("/<repo:name>/blobs/<segment:digest>")
@storage_only
def delete_blob(name: str, digest: str):
    reg = registry()
    if not reg.manifests.delete_enabled:
        raise deletes_disabled("GET, HEAD")
    reg.blobs.delete(name, digest)
    return Response(status=202, headers={"Docker-Content-Digest": digest})
