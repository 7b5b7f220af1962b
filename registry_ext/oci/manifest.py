"""Manifest parsing and validation (pure: bytes in, facts out).

Understands OCI image manifests and indexes (image-spec v1.1, with
``artifactType`` and ``subject``) and Docker schema 2 manifests and manifest
lists. The digest is always computed by the caller over the raw bytes; this
module never re-serialises.

JSON types are checked as strictly as Go's ``encoding/json`` decodes into
the image-spec structs (``specs-go/v1``) and Docker's ``manifestlist``, so
nothing is accepted that containerd, Docker or skopeo then fail to parse:
integers are JSON integers (``2``, not ``2.0``, ``2e0`` or ``true``) within
int64, strings are strings, lists are lists, ``data`` is base64, platform
fields are typed. ``null`` stands for an absent optional field, as in Go.
Where we are stricter than Go (``schemaVersion`` must be 2, a descriptor
needs a media type, a non-negative size and a valid digest), the reason is
in the error.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import orjson

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import mediatypes as mt
from registry_ext.oci.digest import parse_digest

INT64_MAX = 2**63 - 1  # Go decodes sizes into int64
PLATFORM_STRINGS = ("architecture", "os", "os.version", "variant")
PLATFORM_LISTS = ("os.features", "features")  # `features`: Docker's manifest list PlatformSpec


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """A descriptor as parsed (image-spec ``descriptor.md``); the registry keeps what it lists."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What the registry needs to know of a parsed manifest."""

    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None  # declared, else (image manifests) the config media type: the referrers rule
    annotations: dict[str, str] | None
    declared_artifact_type: str | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    def required_blobs(self) -> list[Descriptor]:
        """Config and layers that must be in the repository (non-distributable ones excepted)."""
        blobs = [self.config] if self.config else []
        blobs += [layer for layer in self.layers if not _non_distributable(layer)]
        return blobs


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    """Parse and validate manifest bytes sent with ``content_type``.

    Raises:
        RegistryError(MANIFEST_INVALID): not JSON, wrong shape, or a mediaType
            that contradicts the Content-Type.
    """
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _invalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    version = doc.get("schemaVersion")
    if type(version) is not int:  # noqa: E721 - bool and float (2.0, 2e0) are not Go ints
        raise _invalid("schemaVersion must be the integer 2")
    if version != 2:
        raise _invalid("unsupported schemaVersion (only 2)")
    media_type = _media_type(doc, mt.base_type(content_type))
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = _annotations(doc.get("annotations"), "annotations")
    artifact_type = _optional_str(doc, "artifactType")
    if media_type in mt.INDEXES:
        children = tuple(_descriptor(d, f"manifests[{i}]") for i, d in enumerate(_list(doc, "manifests")))
        return Manifest(media_type, None, (), children, subject, artifact_type, annotations, artifact_type)
    if "config" not in doc:
        raise _invalid("image manifest has no config")
    config = _descriptor(doc["config"], "config")
    layers = tuple(_descriptor(d, f"layers[{i}]") for i, d in enumerate(_list(doc, "layers")))
    return Manifest(media_type, config, layers, (), subject, artifact_type or config.media_type, annotations,
                    artifact_type)


def _media_type(doc: dict, content_type: str) -> str:
    body_type = _optional_str(doc, "mediaType")
    if body_type and content_type in mt.MANIFESTS and body_type != content_type:
        raise _invalid(f"mediaType {body_type!r} contradicts Content-Type {content_type!r}")
    chosen = body_type or (content_type if content_type in mt.MANIFESTS else "")
    if not chosen:
        chosen = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if chosen not in mt.MANIFESTS:
        raise _invalid(f"unsupported manifest media type {chosen!r}")
    if chosen in mt.INDEXES and "config" in doc or chosen in mt.IMAGE_MANIFESTS and "manifests" in doc:
        raise _invalid(f"manifest body does not match media type {chosen!r}")
    return chosen


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = raw.get("mediaType")
    size = raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType missing")
    if type(size) is not int or not 0 <= size <= INT64_MAX:  # noqa: E721 - not bool, not 1.0
        raise _invalid(f"{where}.size must be a non-negative integer")
    try:
        digest = str(parse_digest(raw.get("digest") if isinstance(raw.get("digest"), str) else None))
    except RegistryError:
        raise _invalid(f"{where}.digest is invalid") from None
    urls = _strings(raw.get("urls"), f"{where}.urls")
    _check_data(raw.get("data"), f"{where}.data")
    return Descriptor(media_type, digest, size, _optional_str(raw, "artifactType", where),
                      _annotations(raw.get("annotations"), f"{where}.annotations"),
                      _platform(raw.get("platform"), f"{where}.platform"), urls)


def _platform(raw: Any, where: str) -> dict[str, Any] | None:
    """A platform object with typed fields (image-spec ``Platform``, Docker ``PlatformSpec``)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be an object")
    for key in PLATFORM_STRINGS:
        _optional_str(raw, key, where)
    for key in PLATFORM_LISTS:
        _strings(raw.get(key), f"{where}.{key}")
    return raw


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """An optional list of strings (Go ``[]string``)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{where} must be a list of strings")
    return tuple(value)


def _check_data(value: Any, where: str) -> None:
    """Embedded content (Go ``[]byte``): a standard base64 string; Go skips line breaks in it."""
    if value is None:
        return
    if not isinstance(value, str):
        raise _invalid(f"{where} must be a base64 string")
    try:
        base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{where} is not valid base64") from None


def _list(doc: dict, key: str) -> list:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{key} must be a list")
    return value


def _optional_str(doc: dict, key: str, where: str = "") -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{where}.{key} must be a string" if where else f"{key} must be a string")
    return value


def _annotations(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid(f"{where} must map strings to strings")
    return value


def _non_distributable(layer: Descriptor) -> bool:
    return any(marker in layer.media_type for marker in mt.NON_DISTRIBUTABLE_MARKERS)


def _invalid(message: str) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, {"reason": message}, message=message)
