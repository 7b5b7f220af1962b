"""What the enriched listings show of a manifest, taken from the manifest and its config (pure).

- ``created``: the image's build time, from the manifest annotation
  ``org.opencontainers.image.created``, else the image config's ``created``.
- ``platforms``: ``os/architecture[/variant]`` of each child of an index, or of
  an image's config.
- ``labels``: title, version, source and revision, from the manifest's
  ``org.opencontainers.image.*`` annotations, else the config's labels.

These values come from the pusher and are copied into every listing entry of
the manifest (once per tag), so ``bound_fields`` caps their size in the index.
"""
from __future__ import annotations

from typing import Any

import orjson

from registry_ext.oci.manifest import Manifest

IMAGE_CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json",
                                "application/vnd.docker.container.image.v1+json"})
CONFIG_MAX_BYTES = 1 << 20
CREATED = "org.opencontainers.image.created"
LABELS = {f"org.opencontainers.image.{key}": key for key in ("title", "version", "source", "revision")}
# Fields of an index entry whose size the pusher decides, in the order they get the byte budget.
BOUNDED_FIELDS = ("artifactType", "created", "labels", "platforms")
TRUNCATED = "truncated"  # the entry field listing what bound_fields cut or dropped


def wants_config(manifest: Manifest) -> bool:
    """True when the config blob is an image config worth reading."""
    return (manifest.config is not None and manifest.config.media_type in IMAGE_CONFIG_TYPES
            and manifest.config.size <= CONFIG_MAX_BYTES)


def describe(manifest: Manifest, config: dict[str, Any] | None) -> dict[str, Any]:
    """The listing fields of a manifest (only those that are known)."""
    config = config if isinstance(config, dict) else {}
    annotations = manifest.annotations or {}
    out: dict[str, Any] = {}
    created = annotations.get(CREATED) or _str(config.get("created"))
    if created:
        out["created"] = created
    platforms = _platforms(manifest, config)
    if platforms:
        out["platforms"] = platforms
    config_labels = (config.get("config") or {}).get("Labels") if isinstance(config.get("config"), dict) else None
    labels = {}
    for key, short in LABELS.items():
        value = annotations.get(key) or (_str(config_labels.get(key)) if isinstance(config_labels, dict) else None)
        if value:
            labels[short] = value
    if labels:
        out["labels"] = labels
    return out


def _platforms(manifest: Manifest, config: dict[str, Any]) -> list[str]:
    if manifest.is_index:
        found = [_platform(child.platform) for child in manifest.children if child.platform]
        return [p for p in dict.fromkeys(found) if p]
    single = _platform(config)
    return [single] if single else []


def _platform(doc: dict[str, Any] | None) -> str | None:
    if not doc:
        return None
    os_name, arch = _str(doc.get("os")), _str(doc.get("architecture"))
    if not os_name or not arch:
        return None
    variant = _str(doc.get("variant"))
    return f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def bound_fields(entry: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """``entry`` with its pusher-sized fields within ``max_bytes`` of JSON in all.

    The fields get the budget in ``BOUNDED_FIELDS`` order. A list field
    (``platforms``) keeps its first items that fit, a map (``labels``) the
    entries that fit, a string is kept whole or dropped; every field cut or
    dropped is named in ``entry["truncated"]``. Idempotent: a bounded
    entry comes back unchanged, so `check` can compare stored entries with
    ones derived again from storage.
    """
    out = {key: value for key, value in entry.items() if key not in BOUNDED_FIELDS}
    budget = max_bytes
    cut: list[str] = []
    for field in BOUNDED_FIELDS:
        if field not in entry:
            continue
        value = entry[field]
        size = len(orjson.dumps(value))
        if size > budget:
            value, cut = _prefix(value, budget), cut + [field]
            if not value:
                continue
            size = len(orjson.dumps(value))
        out[field] = value
        budget -= size
    if cut:
        out[TRUNCATED] = cut
    return out


def _prefix(value: Any, budget: int) -> Any:
    """The leading items of a list, or the entries of a map, that fit in ``budget`` bytes of JSON;
    None for a string.

    Sizes add up item by item (brackets, commas, ``"key":``), so a long list costs O(items).
    """
    if isinstance(value, list):
        kept: list[Any] = []
        used = 2
        for item in value:
            used += len(orjson.dumps(item)) + (1 if kept else 0)
            if used > budget:
                break
            kept.append(item)
        return kept
    if isinstance(value, dict):
        part: dict[str, Any] = {}
        used = 2
        for key, item in value.items():
            cost = len(orjson.dumps(key)) + 1 + len(orjson.dumps(item)) + (1 if part else 0)
            if used + cost <= budget:
                part[key] = item
                used += cost
        return part
    return None
