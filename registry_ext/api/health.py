"""Operations endpoints outside ``/v2``: liveness, readiness and Prometheus metrics.

``/healthz`` answers 200 while the process runs; ``/readyz`` answers 200
when Redis and storage work and 503 otherwise, naming what failed and why
only to the clients ``server.readyz_details`` allows (by default those on
this host: the texts hold internal addresses and errors); ``/metrics`` (its
own blueprint, registered only with ``metrics.enabled``) is the Prometheus
text exposition. None of them touches a repository.
"""
from __future__ import annotations

import ipaddress

import orjson
from flask import Blueprint, current_app, request

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
    status, code = ("unavailable", 503) if failed else ("ready", 200)
    if not _details_allowed():
        return _json({"status": status}, code)
    if failed:
        return _json({"status": status, "failed": failed, "checks": checks}, code)
    return _json({"status": status, "checks": checks}, code)


def _details_allowed() -> bool:
    """Per ``server.readyz_details``: everyone, nobody, or a client on this host.

    A loopback peer that forwarded the request for someone else (an
    ``X-Forwarded-For`` not consumed by ``server.trusted_proxies``: a proxy
    the registry was not told about) is not on this host.
    """
    server = current_app.config["SETTINGS"].server
    if server.readyz_details != "loopback":
        return server.readyz_details == "everyone"
    if not server.trusted_proxies and "X-Forwarded-For" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@metrics_bp.get("/metrics")
def prometheus():
    return metrics.render()


def _json(body: dict, status: int) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store"})
