"""``[storage.s3]``: the S3 driver's keys, checked at start like every key (docs/configuration.md).

Pure: turns the TOML table into ``S3Options`` or raises ``error`` (config.ConfigError, passed
in) naming the key at fault. Credentials may be left out: boto3 then reads the standard AWS
environment variables, shared config/credentials files or an instance role, so secrets need
not sit in the registry's TOML.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Mapping

from registry_ext.storage.driver.s3 import MIN_PART, S3Options

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"([A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+")
_ENDPOINT = re.compile(r"https?://[^/?#\s]+/?")
MAX_PART = 5 * 1024 ** 3  # S3's largest part


def s3_options(table: Mapping[str, Any], error: type[Exception]) -> S3Options:
    """The driver options of ``[storage.s3]``; ``error`` for an unknown key or a bad value."""
    fields = {f.name: f for f in dataclasses.fields(S3Options)}
    for key in table:
        if key not in fields:
            raise error(f"unknown key storage.s3.{key}")
    values = {}
    for key, value in table.items():
        default = fields[key].default if key != "bucket" else ""
        kind = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise error(f"storage.s3.{key}: expected {type(default).__name__}, got {type(value).__name__}")
        values[key] = value
    if "bucket" not in values:
        raise error("storage.s3.bucket: required when storage.driver = \"s3\"")
    options = S3Options(**values)
    _check(options, error)
    return options


def _check(o: S3Options, error: type[Exception]) -> None:
    if not _BUCKET.fullmatch(o.bucket):
        raise error("storage.s3.bucket: 3-63 lowercase letters, digits, dots and hyphens")
    prefix = o.prefix.strip("/")
    if prefix and (not _PREFIX.fullmatch(prefix) or {".", ".."} & set(prefix.split("/"))):
        raise error("storage.s3.prefix: path components of letters, digits, _ . - separated by /")
    if o.endpoint_url and not _ENDPOINT.fullmatch(o.endpoint_url):
        raise error("storage.s3.endpoint_url: an http(s) URL without a path, like https://s3.example:9000")
    if bool(o.access_key) != bool(o.secret_key):
        raise error("storage.s3.access_key and secret_key: give both or neither (neither: the AWS "
                    "environment, shared config or instance role)")
    if not MIN_PART <= o.part_size <= MAX_PART:
        raise error(f"storage.s3.part_size: must be {MIN_PART} (5 MiB, S3's minimum) to {MAX_PART} (5 GiB)")
    if o.ca_bundle and not os.path.isfile(o.ca_bundle):
        raise error(f"storage.s3.ca_bundle: no such file: {o.ca_bundle}")
    for key in ("max_connections", "max_attempts", "redirect_expires"):
        if getattr(o, key) < 1:
            raise error(f"storage.s3.{key}: must be at least 1")
    if o.redirect_expires > 7 * 86400:
        raise error("storage.s3.redirect_expires: at most 604800 (7 days, SigV4's limit)")
    for key in ("connect_timeout", "read_timeout"):
        if not 0 < getattr(o, key) <= 3600:
            raise error(f"storage.s3.{key}: must be more than 0 and at most 3600 seconds")
