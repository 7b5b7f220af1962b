"""end-4, end-5, end-6, end-11, end-13 and upload cancel: blob upload sessions."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from registry_ext.api.http import Response, content_length, registry, storage_only
from registry_ext.auth.gate import may_pull
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci.ranges import RangeError, parse_content_range
from registry_ext.services.blobs import upload_headers

bp = Blueprint("uploads", __name__)


@bp.post("/<repo:name>/blobs/uploads/", strict_slashes=False)
@storage_only
def start_upload(name: str):
    """Open a session; or upload monolithically (?digest=); or mount (?mount=&from=)."""
    reg = registry()
    body = _body()
    mount = request.args.get("mount")
    if mount is not None and may_pull(request.args.get("from")):  # else a plain upload (spec)
        digest = reg.uploads.mount(name, mount, request.args.get("from"))
        if digest is not None:
            return _created(name, str(digest))
    digest_param = request.args.get("digest")
    if digest_param is not None:
        digest = reg.uploads.monolithic(name, digest_param, body, content_length(), _client())
        return _created(name, str(digest))
    info = reg.uploads.start(name, _client())
    return Response(status=202, headers=upload_headers(name, info.id, 0))


@bp.patch("/<repo:name>/blobs/uploads/<segment:upload_id>")
@storage_only
def patch_upload(name: str, upload_id: str):
    """Append a chunk (Content-Range) or a streamed body (no Content-Range)."""
    body = _body()
    start, length = _chunk_range()
    info = registry().uploads.append(name, upload_id, body, start, length)
    return Response(status=202, headers=upload_headers(name, upload_id, info.size))


@bp.put("/<repo:name>/blobs/uploads/<segment:upload_id>")
@storage_only
def finish_upload(name: str, upload_id: str):
    """Close the session with an optional last chunk; the digest is verified."""
    reg = registry()
    body = _body()
    reg.uploads.status(name, upload_id)
    start, length = _chunk_range()
    digest = reg.uploads.finish(name, upload_id, request.args.get("digest"), body, start, length)
    return _created(name, str(digest))


@bp.get("/<repo:name>/blobs/uploads/<segment:upload_id>")
@storage_only
def get_upload_status(name: str, upload_id: str):
    info = registry().uploads.status(name, upload_id)
    return Response(status=204, headers=upload_headers(name, upload_id, info.size))


@bp.delete("/<repo:name>/blobs/uploads/<segment:upload_id>")
@storage_only
def cancel_upload(name: str, upload_id: str):
    registry().uploads.cancel(name, upload_id)
    return Response(status=204)


def _body():
    """The request body under the minimum upload rate (api/slow_bodies.py).

    Raises:
        RegistryError(TOOMANYREQUESTS): this client was cut for a slow upload a moment ago.
    """
    watch = current_app.extensions["body_watch"]
    watch.admit(_client())
    return watch.guard(request.stream, request.environ.get("gunicorn.socket"), _client())


def _client() -> str:
    """The client's address (after server.trusted_proxies): whose sessions count against its cap."""
    return request.remote_addr or ""


def _chunk_range() -> tuple[int | None, int | None]:
    """(start, length) of the body from Content-Range, else (None, Content-Length).

    Raises:
        RegistryError(BLOB_UPLOAD_INVALID, SIZE_INVALID)
    """
    declared = content_length()
    header = request.headers.get("Content-Range")
    if not header:
        return None, declared
    try:
        start, length = parse_content_range(header)
    except RangeError as exc:
        raise RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, {"reason": str(exc)}, message=str(exc)) from None
    if declared is not None and declared != length:
        raise RegistryError(ErrorCode.SIZE_INVALID, {"content_length": declared, "range_length": length},
                            message="Content-Length does not match Content-Range")
    return start, length


def _created(name: str, digest: str) -> Response:
    return Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                         "Docker-Content-Digest": digest})
