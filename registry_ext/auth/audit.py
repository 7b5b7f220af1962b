"""The audit log: one JSON line per write and per denied request (docs/auth.md#audit-log).

Fields: ``time``, ``event`` (``write`` or ``denied``), ``user`` (null when
anonymous), ``scheme``, ``client`` (address, after ``trusted_proxies``),
``method``, ``action``, ``repository``, ``reference``, ``digest``,
``status``, ``result`` (``ok``, ``denied``, ``throttled`` or ``failed``),
``reason`` and ``request_id``. Never a password, a token or a query string.
"""
from __future__ import annotations

import datetime
import logging
import logging.handlers
import sys

import orjson

log = logging.getLogger("registry_ext.audit")


def configure(target: str) -> None:
    """Send audit lines to standard error (``-``) or append them to a file (reopened after rotation)."""
    for old in list(log.handlers):
        log.removeHandler(old)
        old.close()
    if target == "-":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def record(**fields) -> None:
    """Write one line (keys in a fixed order, so lines are easy to read and to grep)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    line = {"time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"), **fields}
    log.info("%s", orjson.dumps(line).decode())


def configure_messages() -> None:
    """Make the access-control messages (htpasswd problems, reloads) visible at INFO on stderr."""
    messages = logging.getLogger("registry_ext.auth")
    if not messages.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"))
        messages.addHandler(handler)
        messages.setLevel(logging.INFO)
