"""Readiness: can this process serve registry requests right now?

Liveness needs no check (answering at all is the proof); readiness checks
what every write needs: the Redis index answers, and storage accepts a
new file (a full disk or a read-only mount fails here, not in a push);
and that the index is complete (not being rebuilt after a flush, when
listings answer 503).
"""
from __future__ import annotations

import os
import tempfile

import redis

from registry_ext.services import Registry


def readiness(reg: Registry) -> dict[str, str]:
    """``{"redis": "ok" | why, "storage": "ok" | why, "index": "ok" | "rebuilding"}``."""
    return {"redis": _redis(reg), "storage": _storage(reg),
            "index": "rebuilding" if reg.index.state.rebuilding else "ok"}


def _redis(reg: Registry) -> str:
    try:
        reg.index.client.ping()
    except redis.RedisError as exc:
        return f"unreachable: {exc}"
    return "ok"


def _storage(reg: Registry) -> str:
    if reg.storage.on_objects:  # the bucket answers and takes our credentials (one HEAD)
        from registry_ext.storage.driver.base import DriverError

        try:
            reg.storage.driver.check()
        except DriverError as exc:
            return f"unavailable: {exc.detail}"
        return "ok"
    try:
        fd, path = tempfile.mkstemp(prefix="readyz-", dir=reg.storage.layout.tmp)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(path)
    except OSError as exc:
        return f"not writable: {exc}"
    return "ok"
