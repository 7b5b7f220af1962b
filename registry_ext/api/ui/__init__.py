"""The web UI (docs/ui.md): ``bp`` is registered by the app factory under ``/ui/``."""
from registry_ext.api.ui import mirror_views  # noqa: F401 - registers the mirror pages on bp
from registry_ext.api.ui.views import bp

__all__ = ["bp"]
