"""end-3, end-7 and end-9: manifests by tag or digest (a push by digest may carry `?tag=` parameters).

Exact bytes and the stored Content-Type are returned; Accept is not used to
convert anything (the registry never rewrites a manifest).
"""
from __future__ import annotations

from flask import Blueprint, current_app, request

from registry_ext.api.http import Response, read_limited, registry, storage_only
from registry_ext.api.v2 import proxied
from registry_ext.errors import ErrorCode, RegistryError

bp = Blueprint("manifests", __name__)


@bp.route("/<repo:name>/manifests/<segment:reference>", methods=["GET", "HEAD"])
@storage_only
def get_manifest(name: str, reference: str):
    route = proxied.current_route()
    if route is not None:
        return proxied.manifest(route, reference)
    head = request.method == "HEAD"
    stored = registry().manifests.get(name, reference, with_body=not head)
    if not head:
        registry().manifests.pulled(name, reference, stored.digest)
    headers = {"Docker-Content-Digest": stored.digest, "ETag": f'"{stored.digest}"'}
    resp = Response(stored.data or b"", headers=headers, content_type=stored.media_type)
    resp.content_length = stored.size
    return resp


@bp.put("/<repo:name>/manifests/<segment:reference>")
@storage_only
def put_manifest(name: str, reference: str):
    data = read_limited(current_app.config["MANIFEST_MAX_BYTES"])
    pushed = registry().manifests.put(name, reference, data, request.headers.get("Content-Type"),
                                      request.args.getlist("tag"))
    resp = Response(status=201, headers={"Location": f"/v2/{name}/manifests/{pushed.digest}",
                                         "Docker-Content-Digest": pushed.digest})
    if pushed.manifest.subject is not None:
        resp.headers["OCI-Subject"] = pushed.manifest.subject.digest
    for tag in pushed.tag_params:  # one OCI-Tag header per tag applied (distribution-spec main)
        resp.headers.add("OCI-Tag", tag)
    return resp


@bp.delete("/<repo:name>/manifests/<segment:reference>")
def delete_manifest(name: str, reference: str):
    """A tag, or a manifest; ``?force=true`` deletes a manifest an index of the repository lists."""
    force = request.args.get("force") or "false"
    if force not in ("true", "false"):
        raise RegistryError(ErrorCode.UNSUPPORTED, {"parameter": "force"}, message="force must be true or false")
    registry().manifests.delete(name, reference, force=force == "true")
    return Response(status=202)
