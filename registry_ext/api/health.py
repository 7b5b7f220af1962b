"""Operations endpoints outside ``/v2``: liveness, readiness and Prometheus metrics.

``/healthz`` answers 200 while the process runs; ``/readyz`` answers 200
when Redis and storage work and 503 naming what failed; ``/metrics`` (its
own blueprint, registered only with ``metrics.enabled``) is the Prometheus
text exposition. None of them touches a repository.
"""
from __future__ import annotations

import orjson
from flask import Blueprint

from registry_ext import metrics
from registry_ext.api.http import Response, registry
from registry_ext.services.health import readiness

bp = Blueprint("health", __name__)
metrics_bp = Blueprint("metrics", __name__)


@bp.get("/healthz")
def healthz():
    return _json({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz():
    checks = readiness(registry())
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        return _json({"status": "unavailable", "failed": failed, "checks": checks}, 503)
    return _json({"status": "ready", "checks": checks}, 200)


@metrics_bp.get("/metrics")
def prometheus():
    return metrics.render()


def _json(body: dict, status: int) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store"})
