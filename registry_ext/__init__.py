"""registry_ext: an OCI Distribution v1.1 registry with enriched tag listings."""
from __future__ import annotations

__version__ = "0.1.0"


def create_app(settings=None):
    """Build the Flask app (imported lazily so importing the package stays cheap)."""
    from registry_ext.app import create_app as _create_app

    return _create_app(settings)


def create_worker_app(settings=None):
    """The app plus its index maintenance thread, as gunicorn workers run it."""
    from registry_ext.app import create_worker_app as _create_worker_app

    return _create_worker_app(settings)


__all__ = ["create_app", "create_worker_app", "__version__"]
