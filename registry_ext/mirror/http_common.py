"""What the registry HTTP clients share (mirror-diff's RemoteClient, the pull-through mirror's
upstreams): the error they raise, challenge and Retry-After parsing, origins, short error texts."""
from __future__ import annotations

import email.utils
import re
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RemoteError(Exception):
    """A request failed for good; the message is meant for the report."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # a 429/503's Retry-After, in seconds


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {realm, service, ...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE.findall(rest))


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


Origin = tuple[str, str, int]


def origin(url: str) -> Origin:
    """(scheme, host, port) of an http(s) URL, the port made explicit. Raises: RemoteError."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise RemoteError(f"not an http(s) URL: {url[:200]!r}")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def safe_origin(url: str) -> Origin | None:
    try:
        return origin(url)
    except RemoteError:
        return None


def realm_key(url: str) -> tuple[Origin, str]:
    """A token realm as compared with the configured one: origin and path (the query ignored)."""
    return origin(url), urlsplit(url).path or "/"


def origin_text(url: str) -> str:
    scheme, host, port = safe_origin(url) or ("?", url[:100], 0)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def short_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def json_body(resp: requests.Response, url: str) -> Any:
    try:
        return orjson.loads(resp.content)
    except (orjson.JSONDecodeError, requests.RequestException) as exc:
        raise RemoteError(f"{short_path(url)}: invalid JSON ({str(exc)[:80]})") from None


def error_code(resp: requests.Response) -> str | None:
    try:
        errors = orjson.loads(resp.content).get("errors")
        return str(errors[0].get("code"))
    except Exception:  # noqa: BLE001 - any malformed error body just has no code
        return None


def reason(exc: Exception) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)|(Connection refused|Name or service not known)", text)
    return (match.group(1) or match.group(2)) if match else text[:120]
