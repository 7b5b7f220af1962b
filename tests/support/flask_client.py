"""The Flask test client the tests use."""
from __future__ import annotations

from flask.testing import FlaskClient


class BufferedClient(FlaskClient):
    """Reads each body fully and closes it, as a WSGI server does (streamed blobs are open files)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)
