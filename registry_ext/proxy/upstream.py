"""One upstream's HTTP client: its URLs in order, token/Basic auth, retries, bounded bodies.

Built on mirror/remote.py's ``RemoteClient`` (one per URL), which already does what the mirror needs:
Bearer challenges answered with credentials only for the upstream's own origin or its configured
``realm`` (anonymous token requests elsewhere), Basic auth, retries with exponential backoff on
connection errors, timeouts, 5xx and 429 (a ``Retry-After`` up to ``RETRY_AFTER_CAP`` seconds is
waited for; a longer one fails at once and is passed on to the client), and other hosts resolved once
and dialled pinned (mirror/pinned.py). Here:

- failover: connection errors, timeouts, 5xx and 429 move on to the next URL; 401/403/404 do not;
- a per-worker semaphore caps requests in flight to the upstream at ``concurrency`` (a blob holds
  its slot until its body is closed); waiting for a slot longer than ``timeout`` is a failure;
- ``rate``: a per-worker token bucket (proxy/rules.py) of that many requests per second; a request
  that would wait more than ``RATE_WAIT_CAP`` seconds for its token fails at once as unavailable,
  with the wait as Retry-After (the views then serve stale, or 503);
- manifests and tag list pages are read up to ``limits.manifest_max_bytes`` each and within
  ``timeout`` overall (an answer that never ends is cut); a manifest's digest is verified before
  anyone stores it; tag lists follow ``Link`` on the upstream's origin, at most ``MAX_TAG_PAGES`` pages;
- blob redirects (CDNs) are followed by hand, at most ``MAX_REDIRECTS``, without credentials off
  the upstream's origin, and never into loopback, private or link-local networks unless the upstream
  itself is there (``RemoteClient.check_destination``).

Failures are ``UpstreamError``s (proxy/source.py); the views map them to OCI errors.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Iterator, TypeVar
from urllib.parse import quote, urljoin

import orjson
import requests

from registry_ext.mirror.pinned import pinned_session
from registry_ext.mirror.remote import MAX_REDIRECTS, RemoteClient, RemoteError, origin
from registry_ext.oci import mediatypes as mt
from registry_ext.oci.digest import digest_bytes, is_digest, parse_digest
from registry_ext.proxy.config import Upstream
from registry_ext.proxy.rules import TokenBucket, retry_after
from registry_ext.proxy.source import (UpstreamBlob, UpstreamError, UpstreamNotFound, UpstreamRefused,
                                       UpstreamUnavailable)

RETRY_AFTER_CAP = 2.0  # seconds a 429's Retry-After is waited for inside one client request
TAGS_PAGE = 1000
MAX_TAG_PAGES = 100
CHUNK = 1 << 20
MANIFEST_ACCEPT = ", ".join((mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_LIST))
_REDIRECTS = (301, 302, 303, 307, 308)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class FetchedManifest:
    digest: str | None   # verified for a GET; as the upstream says for a HEAD (None: it did not say)
    media_type: str
    size: int | None
    data: bytes | None   # None for a HEAD


class UpstreamClient:
    """One configured upstream; safe to share between a worker's threads."""

    def __init__(self, upstream: Upstream, manifest_max_bytes: int, sleep: Callable[[float], None] = time.sleep):
        self.config = upstream
        self.name = upstream.name
        self.manifest_max_bytes = manifest_max_bytes
        self.clients = [RemoteClient(url, username=upstream.username or None, password=upstream.password,
                                     realm=upstream.realm or None, timeout=upstream.timeout,
                                     retries=upstream.max_retries, backoff=upstream.retry_delay,
                                     max_wait=min(RETRY_AFTER_CAP, upstream.timeout),
                                     concurrency=upstream.concurrency, verify=upstream.verify, sleep=sleep)
                        for url in upstream.urls]
        self.slots = threading.BoundedSemaphore(upstream.concurrency)
        self.bucket = TokenBucket(upstream.rate, sleep=sleep) if upstream.rate else None
        self.observe: Callable[[UpstreamError | None], None] = _unobserved  # proxy/status.py records outcomes

    # -- manifests and tags -------------------------------------------------------------------
    def manifest(self, repo: str, reference: str, *, head: bool = False) -> FetchedManifest:
        """A manifest by tag or digest; a GET's bytes are bounded and their digest verified.

        Raises:
            UpstreamError
        """
        def call(client: RemoteClient) -> FetchedManifest:
            resp = client.request("HEAD" if head else "GET", f"/v2/{repo}/manifests/{reference}",
                                  scope=_scope(repo), headers={"Accept": MANIFEST_ACCEPT}, stream=True)
            try:
                self._found(resp, f"manifest {reference[:80]} of {repo}")
                media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
                said = resp.headers.get("Docker-Content-Digest") or None
                if head:
                    return FetchedManifest(said, media_type, _length(resp), None)
                data = self._bounded(resp, "manifest")
            finally:
                resp.close()
            return FetchedManifest(self._verified(data, reference, said), media_type, len(data), data)

        return self._call(call)

    def tags(self, repo: str, limit: int) -> list[str]:
        """The upstream's tags of ``repo`` (pages followed on its origin), at most ``limit``.

        Raises:
            UpstreamError
        """
        def call(client: RemoteClient) -> list[str]:
            tags: list[str] = []
            url: str | None = f"/v2/{repo}/tags/list?n={min(limit, TAGS_PAGE)}"
            seen: set[str] = set()
            for _page in range(MAX_TAG_PAGES):
                if url is None or url in seen or len(tags) >= limit:
                    break
                seen.add(url)
                resp = client.request("GET", url, scope=_scope(repo), stream=True)
                try:
                    self._found(resp, f"repository {repo}")
                    tags.extend(self._tag_page(self._bounded(resp, "tag list"), repo))
                finally:
                    resp.close()
                url = client.next_url(resp, None)  # on the upstream's origin only
            return tags[:limit]

        return self._call(call)

    def referrers(self, repo: str, digest: str, artifact_type: str | None) -> tuple[list[dict], bool]:
        """The first page of the upstream's referrers of ``digest`` (bounded like a manifest), and
        whether the upstream applied the ``artifactType`` filter (OCI-Filters-Applied).

        Raises:
            UpstreamNotFound: no referrers API there (a registry with one never answers 404).
            UpstreamError
        """
        parse_digest(digest)
        query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""

        def call(client: RemoteClient) -> tuple[list[dict], bool]:
            resp = client.request("GET", f"/v2/{repo}/referrers/{digest}{query}", scope=_scope(repo),
                                  headers={"Accept": mt.OCI_INDEX}, stream=True)
            try:
                self._found(resp, f"referrers of {digest} in {repo}")
                data = self._bounded(resp, "referrers")
                applied = "artifactType" in resp.headers.get("OCI-Filters-Applied", "")
            finally:
                resp.close()
            return self._descriptors(data, digest), applied

        return self._call(call)

    def _descriptors(self, data: bytes, digest: str) -> list[dict]:
        """The descriptors of a referrers index, only their OCI fields (each checked).

        Raises:
            UpstreamRefused: not an index of well-formed descriptors.
        """
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        found = body.get("manifests") if isinstance(body, dict) else None
        if not isinstance(found, list):
            raise UpstreamRefused(self.name, f"referrers of {digest}: not an image index")
        out = []
        for item in found:
            if not (isinstance(item, dict) and isinstance(item.get("mediaType"), str)
                    and isinstance(item.get("digest"), str) and is_digest(item["digest"])
                    and isinstance(item.get("size"), int) and not isinstance(item["size"], bool)):
                raise UpstreamRefused(self.name, f"referrers of {digest}: a descriptor is malformed")
            out.append({k: item[k] for k in ("mediaType", "digest", "size", "artifactType", "annotations")
                        if k in item})
        return out

    def _tag_page(self, data: bytes, repo: str) -> list[str]:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        page = body.get("tags") if isinstance(body, dict) else None
        if page is None and isinstance(body, dict):
            return []  # distribution answers "tags": null for a repository without tags
        if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
            raise UpstreamRefused(self.name, f"tags of {repo}: not a tag list")
        return page

    # -- blobs ------------------------------------------------------------------------------
    def source(self, repo: str) -> "RepoBlobs":
        """The BlobSource of one upstream repository (for proxy/blobfill)."""
        return RepoBlobs(self, repo)

    def blob_size(self, repo: str, digest: str) -> int | None:
        """HEAD a blob: its size (None when the upstream does not say). Raises: UpstreamError."""
        resp = self._blob(repo, digest, "HEAD")
        try:
            return _length(resp)
        finally:
            resp.close()
            self.slots.release()

    def open_blob(self, repo: str, digest: str) -> UpstreamBlob:
        """Start a blob's download. Raises: UpstreamError before the first byte."""
        resp = self._blob(repo, digest, "GET")
        released = threading.Event()

        def close() -> None:
            if not released.is_set():
                released.set()
                resp.close()
                self.slots.release()

        return UpstreamBlob(_length(resp), self._chunks(resp, digest), close)

    def _chunks(self, resp: requests.Response, digest: str) -> Iterator[bytes]:
        try:
            yield from resp.iter_content(CHUNK)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(self.name, f"blob {digest}: the download broke off ({str(exc)[:120]})") \
                from None

    def _blob(self, repo: str, digest: str, method: str) -> requests.Response:
        """The blob's answer (200, body unread), holding a slot. Raises: UpstreamError (slot released)."""
        parse_digest(digest)

        def call(client: RemoteClient) -> requests.Response:
            resp = client.request(method, f"/v2/{repo}/blobs/{digest}", scope=_scope(repo), stream=True,
                                  follow=False)
            for _hop in range(MAX_REDIRECTS):
                if resp.status_code not in _REDIRECTS:
                    break
                resp = self._redirect(client, resp, method, repo)
            try:
                self._found(resp, f"blob {digest} of {repo}")
            except UpstreamError:
                resp.close()
                raise
            if resp.status_code != 200:
                resp.close()
                raise UpstreamRefused(self.name, f"blob {digest}: HTTP {resp.status_code}", status=resp.status_code)
            return resp

        return self._call(call, hold=True)

    def _redirect(self, client: RemoteClient, resp: requests.Response, method: str, repo: str) -> requests.Response:
        resp.close()
        target = urljoin(resp.url, resp.headers.get("Location", ""))
        try:
            where = origin(target)
        except RemoteError as exc:
            raise UpstreamRefused(self.name, f"blob redirect refused: {exc}") from None
        if where == client.origin:
            return client.request(method, target, scope=_scope(repo), stream=True, follow=False)
        try:
            addresses = client.check_destination(where, f"blob redirect to {where[0]}://{where[1]}:{where[2]}")
        except RemoteError as exc:
            raise UpstreamRefused(self.name, str(exc)) from None
        session = pinned_session(addresses)  # no credentials leave the upstream's origin
        try:
            return session.request(method, target, stream=True, timeout=self.config.timeout,
                                   verify=self.config.verify, allow_redirects=False)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(self.name, f"blob redirect target failed ({str(exc)[:120]})") from None

    # -- shared -----------------------------------------------------------------------------
    def _call(self, call: Callable[[RemoteClient], T], hold: bool = False) -> T:
        """``_attempt``, its outcome told to ``observe`` (the UI's upstream status). Raises: UpstreamError."""
        try:
            result = self._attempt(call, hold)
        except UpstreamError as exc:
            self.observe(exc)
            raise
        self.observe(None)
        return result

    def _attempt(self, call: Callable[[RemoteClient], T], hold: bool = False) -> T:
        """``call`` with each URL in turn until one answers; holding a concurrency slot meanwhile
        (and after, with ``hold``: the caller releases it). Raises: UpstreamError."""
        wait = self.bucket.take() if self.bucket is not None else 0.0
        if wait:
            raise UpstreamUnavailable(self.name, f"over its rate of {self.config.rate:g} requests/s",
                                      retry_after=retry_after(wait))
        if not self.slots.acquire(timeout=self.config.timeout):
            raise UpstreamUnavailable(self.name, f"{self.config.concurrency} requests already in flight",
                                      retry_after=1)
        kept = False
        try:
            failure: UpstreamError | None = None
            for client in self.clients:
                client.rate_remaining = None  # the mirror relies on 429 answers, not on Docker Hub's header
                try:
                    result = call(client)
                except RemoteError as exc:
                    failure = self._mapped(exc)
                    if not isinstance(failure, UpstreamUnavailable):
                        raise failure from None
                    continue
                except UpstreamUnavailable as exc:
                    failure = exc
                    continue
                kept = hold
                return result
            assert failure is not None
            raise failure
        finally:
            if not kept:
                self.slots.release()

    def _mapped(self, exc: RemoteError) -> UpstreamError:
        status = exc.status
        if status is None or status == 429 or status >= 500:
            return UpstreamUnavailable(self.name, str(exc), status=status, retry_after=exc.retry_after)
        return UpstreamRefused(self.name, str(exc), status=status)

    def _found(self, resp: requests.Response, what: str) -> None:
        if resp.status_code == 404:
            raise UpstreamNotFound(self.name, f"{what}: not found upstream", status=404)

    def _bounded(self, resp: requests.Response, what: str) -> bytes:
        """The body, at most ``manifest_max_bytes`` and within ``timeout``. Raises: UpstreamError."""
        limit, deadline = self.manifest_max_bytes, time.monotonic() + self.config.timeout
        declared = _length(resp)
        if declared is not None and declared > limit:
            raise UpstreamRefused(self.name, f"{what} of {declared} bytes exceeds {limit}")
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(65536):
                size += len(chunk)
                if size > limit:
                    raise UpstreamRefused(self.name, f"{what} exceeds {limit} bytes")
                if time.monotonic() > deadline:
                    raise UpstreamUnavailable(self.name, f"{what} not received within {self.config.timeout:g}s")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(self.name, f"{what} download broke off ({str(exc)[:120]})") from None
        return b"".join(chunks)

    def _verified(self, data: bytes, reference: str, said: str | None) -> str:
        """The digest of ``data``, checked against the digest asked for and the one the upstream named.

        Raises:
            UpstreamRefused: a mismatch (nothing is stored), or a body that is not JSON.
        """
        wanted = reference if is_digest(reference) else said
        algorithm = parse_digest(wanted).algorithm if wanted and is_digest(wanted) else "sha256"
        actual = str(digest_bytes(data, algorithm))
        if wanted is not None and wanted != actual:
            raise UpstreamRefused(self.name, f"manifest digest mismatch: expected {wanted[:80]}, got {actual}")
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamRefused(self.name, "manifest is not JSON") from None
        return actual


class RepoBlobs:
    """The blobs of one upstream repository: proxy/source.py's ``BlobSource``."""

    def __init__(self, client: UpstreamClient, repo: str):
        self.client = client
        self.repo = repo
        self.upstream = client.name

    def open(self, digest: str) -> UpstreamBlob:
        return self.client.open_blob(self.repo, digest)


def _unobserved(_outcome: UpstreamError | None) -> None:
    pass


def _scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def _length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length", "")
    return int(value) if value.isdigit() and len(value) < 19 else None
