"""Repository names, tags and upload ids: the spec's grammar (pure).

Name: ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``
(distribution-spec "Pulling manifests"), at most 255 characters.
Tag: ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``.
"""
from __future__ import annotations

import re

from registry_ext.errors import ErrorCode, RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
UPLOAD_ID_RE = re.compile(r"[a-f0-9]{32}")
NAME_MAX = 255


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name.

    Raises:
        RegistryError(NAME_INVALID)
    """
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise RegistryError(ErrorCode.NAME_INVALID, {"name": name[:NAME_MAX + 1]})
    return name


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def validate_tag(tag: str) -> str:
    """Return ``tag`` if valid.

    Raises:
        RegistryError(MANIFEST_INVALID): the spec has no TAG_INVALID code.
    """
    if not is_valid_tag(tag):
        raise RegistryError(ErrorCode.MANIFEST_INVALID, {"tag": tag[:200]}, message="invalid tag")
    return tag


def is_valid_upload_id(upload_id: str) -> bool:
    return UPLOAD_ID_RE.fullmatch(upload_id) is not None
