"""The one table of OCI error codes, and the one renderer.

Views and services *raise* :class:`RegistryError`; a single Flask error
handler renders ``{"errors": [{"code", "message", "detail"}]}``. The spec
(distribution-spec v1.1.1, "Error Codes") gives codes and messages but not
HTTP statuses: each code carries a default status, and a raise may override
it where the spec names another (416 on a bad chunk, 413 on a large manifest).
"""
from __future__ import annotations

import enum
from typing import Any

import orjson


class ErrorCode(enum.Enum):
    """OCI error codes 1-14 with their default HTTP status and message."""

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (400, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


class RegistryError(Exception):
    """An OCI error to send to the client."""

    def __init__(self, code: ErrorCode, detail: Any = None, *, status: int | None = None,
                 message: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message or code.message)
        self.code = code
        self.detail = detail
        self.status = status or code.status
        self.message = message or code.message
        self.headers = headers or {}

    def body(self) -> bytes:
        """The error envelope as JSON bytes."""
        entry: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return orjson.dumps({"errors": [entry]})


def render(err: RegistryError):
    """Build the Flask response for an error (imported lazily: no Flask at import)."""
    from flask import Response

    resp = Response(err.body(), status=err.status, content_type="application/json")
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


def register_error_handlers(app) -> None:
    """Render RegistryError, and HTTP errors under /v2 and /auth/, as OCI envelopes."""
    from flask import request
    from werkzeug.exceptions import HTTPException

    app.register_error_handler(RegistryError, render)

    def http_error(exc: HTTPException):
        if not request.path.startswith(("/v2", "/auth/")):
            return exc
        code = ErrorCode.UNSUPPORTED
        if exc.code == 413:
            code = ErrorCode.SIZE_INVALID
        headers = {}
        allowed = getattr(exc, "valid_methods", None)  # werkzeug's MethodNotAllowed
        if exc.code == 405 and allowed:
            headers["Allow"] = ", ".join(allowed)
        return render(RegistryError(code, status=exc.code, message=exc.description or code.message,
                                    headers=headers))

    app.register_error_handler(HTTPException, http_error)
