"""registry_ext: an OCI Distribution v1.1 registry with enriched tag listings."""
from __future__ import annotations

__version__ = "0.1.0"


def create_app(settings=None):
    """Build the Flask app (imported lazily so importing the package stays cheap)."""
    from registry_ext.app import create_app as _create_app

    return _create_app(settings)


__all__ = ["create_app", "__version__"]
