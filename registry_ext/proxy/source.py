"""What the blob fill reads from an upstream, and the upstream failures every proxy module shares.

The fill (``blobfill``) knows nothing of HTTP: an upstream's client hands it an ``UpstreamBlob`` (a
size and an iterator of chunks) through a ``BlobSource``. Failures are ``UpstreamError``s; the views
turn them into OCI errors (serving what is cached instead where the cache can answer).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Protocol


class UpstreamError(Exception):
    """An upstream could not answer: ``reason`` is said to the client and logged."""

    def __init__(self, upstream: str, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(f"upstream {upstream}: {reason}")
        self.upstream = upstream
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """Down, failing (5xx), too slow, or limiting us (429): cached content may be served instead."""


class UpstreamNotFound(UpstreamError):
    """The upstream answered that the repository, manifest or blob does not exist (404)."""


class UpstreamRefused(UpstreamError):
    """The upstream refused us (401/403 after authentication) or sent something we will not store
    (not JSON, a wrong digest or length, a redirect we do not follow)."""


@dataclasses.dataclass
class UpstreamBlob:
    """A blob's body as the upstream sends it, from its first byte."""

    size: int | None  # from Content-Length; None when the upstream did not say
    chunks: Iterator[bytes]
    close: Callable[[], None]


class BlobSource(Protocol):
    """One upstream repository's blobs: ``open`` starts a download or raises an ``UpstreamError``."""

    upstream: str  # the upstream's configured name (lease keys, logs, metrics)

    def open(self, digest: str) -> UpstreamBlob: ...
