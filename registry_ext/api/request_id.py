"""Request ids: taken from the proxy or made here, echoed in ``X-Request-ID``.

nginx sends its ``$request_id`` (or the client's own id, see
deploy/nginx.conf); a missing or malformed id is replaced by a fresh one.
The response carries it back, and gunicorn's access log prints it from there
(``rid=%({x-request-id}o)s``), so one id ties the nginx log line, the
gunicorn log line and what the client saw.
"""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def init_app(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_echo)


def current() -> str:
    """This request's id (assigned on first use if no hook ran yet)."""
    if "request_id" not in g:
        _assign()
    return g.request_id


def _assign() -> None:  # a before_request hook: returning a value would replace the response
    given = request.headers.get(HEADER, "")
    g.request_id = given if _VALID.fullmatch(given) else uuid.uuid4().hex


def _echo(resp):
    resp.headers[HEADER] = current()
    return resp
