"""The update feed's event document (pure): one change of one tag.

``action`` is ``pushed`` (the tag appeared), ``moved`` (it now points at
another manifest) or ``deleted``. ``digest`` is what the tag points at
after the change (``null`` once deleted), ``previous`` what it pointed at
before (``null`` when pushed). ``mediaType`` and ``artifactType`` describe
the manifest ``digest`` names (``previous`` for a delete). ``time`` is when
the registry made the change (RFC 3339, UTC, ms).

The document is serialised once, when the change is indexed, and sent as
those bytes by every reader (feed pages, waiters, webhooks).
"""
from __future__ import annotations

from typing import Any

import orjson

from registry_ext.clock import rfc3339

ACTIONS = ("pushed", "moved", "deleted")


def tag_event(repository: str, tag: str, action: str, digest: str | None, previous: str | None,
              manifest: dict[str, Any] | None, at_ms: int) -> bytes:
    """The JSON bytes of one event; ``manifest`` is the index entry of the manifest described."""
    doc: dict[str, Any] = {"repository": repository, "tag": tag, "action": action, "digest": digest,
                           "previous": previous, "mediaType": (manifest or {}).get("mediaType", "")}
    if manifest and manifest.get("artifactType"):
        doc["artifactType"] = manifest["artifactType"]
    doc["time"] = rfc3339(at_ms)
    return orjson.dumps(doc)


def transition(old: str | None, new: str | None) -> str | None:
    """The action taking a tag from ``old`` to ``new`` (digests, None = absent); None if nothing changed."""
    if old == new:
        return None
    if new is None:
        return "deleted"
    return "pushed" if old is None else "moved"
