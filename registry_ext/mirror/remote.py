"""HTTP client for a remote registry: timeouts, retries, rate limits, token auth, paging.

- Retries connection errors, timeouts, 5xx and 429 with exponential backoff
  and full jitter; a 429's ``Retry-After`` (seconds or HTTP date) is obeyed
  when it is at most ``max_wait`` seconds, else the request fails at once.
- Docker Hub's ``ratelimit-remaining: N;w=SECONDS`` is recorded; at 0 the
  client stops sending requests (they would only earn 429s).
- Token auth (distribution ``docs/spec/auth/token.md``): a 401 with
  ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` fetches a token
  from the realm, caches it per scope and retries once; a Basic challenge is
  answered with the credentials.
- Credentials (Basic, and the tokens they buy) go only to the remote's own
  origin (scheme, host, port: exactly) and to the token realm configured for
  it (``realm``) or one on the remote's origin. A challenge naming any other
  realm gets an anonymous token request: public images still compare, and a
  remote cannot collect the password by naming a realm of its choosing.
- Redirects are followed by hand, at most ``MAX_REDIRECTS`` hops, on the
  remote's origin only: mirror-diff reads listings and manifests, never blobs
  (the one kind of request registries send to other hosts, their CDNs), so a
  redirect elsewhere is refused and the report says so.
- Any host other than the remote's own (a token realm) is resolved once, and
  the request dials the addresses checked, never the name again (no DNS
  rebinding, mirror/pinned.py); it is refused when an address is loopback, private, link-local, unspecified,
  multicast or reserved (IPv4-mapped, 6to4 and NAT64 IPv6 read as IPv4), unless
  the remote itself resolves into that same network: a remote cannot make this
  server fetch from its internal network or a cloud metadata service.
- ``pages`` follows ``Link: <...>; rel="next"`` on the same origin only, stops
  on a loop and after ``max_pages``, and reports why a listing is incomplete.
- ``docker.io`` / ``index.docker.io`` mean ``registry-1.docker.io``, where
  one-component names get ``library/`` (reference/mirrors-and-proxies.md §5.2).
- With a ``deadline`` (``time.monotonic()``), the client's whole life is
  bounded, not each request: every connect and read waits at most until
  then, no retry or backoff starts after it, and a body still arriving at
  the deadline is dropped. The API uses it so one comparison holds a
  request thread for at most the remote's ``timeout``.
"""
from __future__ import annotations

import random
import re
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from registry_ext.mirror.addresses import internal_network, resolve
from registry_ext.mirror.http_common import (Origin, RemoteError, error_code, json_body, origin, parse_challenge,
                                             realm_key, reason, retry_after, safe_origin, short_path, origin_text)
from registry_ext.mirror.pinned import pinned_session

HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
HUB_HOST = "registry-1.docker.io"
_LOOPBACK = ("127.", "localhost", "[::1]")
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def normalize_url(target: str, plain_http: bool = False) -> str:
    """``host[:port]`` or a URL -> a base URL without trailing slash (Docker Hub aliases resolved)."""
    if "://" not in target:
        host = target.strip("/")
        scheme = "http" if plain_http or host.startswith(_LOOPBACK) else "https"
        target = f"{scheme}://{host}"
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"not a registry address: {target!r}")
    host = parts.netloc
    if parts.hostname in HUB_ALIASES:
        host = HUB_HOST
    scheme = "http" if plain_http else parts.scheme
    return f"{scheme}://{host}"


def remote_repo(base_url: str, repo: str) -> str:
    """The repository name as the remote knows it (``library/`` for Docker Hub official images)."""
    if urlsplit(base_url).hostname == HUB_HOST and "/" not in repo:
        return f"library/{repo}"
    return repo


class RemoteClient:
    """One remote registry; safe to use from several threads."""

    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 realm: str | None = None, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 max_wait: float = 60.0, concurrency: int = 8, verify: bool | str = True, max_pages: int = 10000,
                 sleep: Callable[[float], None] = time.sleep, deadline: float | None = None):
        self.base_url = base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self.credentials = (username, password or "") if username else None  # no password: an empty one
        self.realm = realm_key(realm) if realm else None
        self.timeout, self.retries, self.backoff, self.max_wait = timeout, retries, backoff, max_wait
        self.concurrency, self.verify, self.max_pages, self.sleep = concurrency, verify, max_pages, sleep
        self.deadline = deadline
        self.requests = 0
        self.rate_remaining: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._withheld: str | None = None  # a realm that got an anonymous request instead of the credentials
        self._home: set | None = None

    def _session(self) -> requests.Session:
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = self._local.session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(4, self.concurrency))
            sess.mount("http://", adapter)
            sess.mount("https://", adapter)
        return sess

    def request(self, method: str, url: str, *, scope: str = "", headers: dict | None = None,
                ok: tuple[int, ...] = (200,), stream: bool = False, follow: bool = True) -> requests.Response:
        """Send with auth and retries; return a response whose status is in ``ok`` or 404.

        ``stream``: the body is left to the caller (who closes the response). ``follow=False``: a
        redirect is returned, not followed (the pull-through mirror follows blob redirects itself).

        Raises:
            RemoteError: unreachable, timed out, 401/403, 429 beyond ``max_wait``, 5xx after retries.
        """
        url = url if "://" in url else self.base_url + url
        for attempt in range(self.retries + 1):
            self._timeout()  # raises once the deadline has passed
            if self.rate_remaining == 0:
                raise RemoteError("rate limit exhausted (ratelimit-remaining: 0)", 429)
            try:
                resp = self._send(method, url, scope, headers, stream, follow)
            except requests.Timeout:
                failure, wait = RemoteError(f"{method} {url}: timed out after {self.timeout:g}s"), None
            except requests.ConnectionError as exc:
                failure, wait = RemoteError(f"{method} {url}: cannot connect ({reason(exc)})"), None
            else:
                self._note_rate(resp)
                if resp.status_code in ok or resp.status_code == 404 or (
                        not follow and resp.status_code in _REDIRECTS):
                    return resp
                failure, wait = self._failure(method, url, resp)
                if resp.status_code < 500 and resp.status_code != 429:
                    raise failure
                if wait is not None and wait > self.max_wait:
                    raise RemoteError(f"{failure}; Retry-After {wait:.0f}s exceeds {self.max_wait:g}s", 429, wait)
            if attempt == self.retries:
                raise failure
            pause = wait if wait is not None else random.uniform(0, self.backoff * 2 ** attempt)
            if self.deadline is not None and time.monotonic() + pause >= self.deadline:
                raise failure
            self.sleep(pause)
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, scope: str, headers: dict | None, stream: bool = False,
              follow: bool = True) -> requests.Response:
        resp = self._once(method, url, scope, headers, stream, follow)
        if resp.status_code == 401:
            self._tokens.pop(scope, None)  # expired (a long-lived client): one new token, one retry
            if self._authenticate(resp, scope):
                resp = self._once(method, url, scope, headers, stream, follow)
        return resp

    def _once(self, method: str, url: str, scope: str, headers: dict | None, stream: bool = False,
              follow: bool = True) -> requests.Response:
        """One request, following redirects on the remote's origin by hand; credentials only there.

        With a deadline the body is read here, by what has arrived, so a trickling answer cannot hold
        the comparison past it.

        Raises:
            RemoteError: a redirect to another origin, more than ``MAX_REDIRECTS`` of them, or the
                deadline passed.
        """
        for hop in range(MAX_REDIRECTS + 1):
            if origin(url) != self.origin:
                raise RemoteError(f"{method} {short_path(url)}: not on the remote's origin; not sent")
            sent = dict(headers or {})
            token = self._tokens.get(scope)
            if token:
                sent["Authorization"] = f"Bearer {token}"
            auth = self.credentials if self._basic and not token else None
            with self._lock:
                self.requests += 1
            resp = self._session().request(method, url, headers=sent, auth=auth, timeout=self._timeout(),
                                           verify=self.verify, allow_redirects=False,
                                           stream=stream or self.deadline is not None)
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECTS or not location or not follow:
                if self.deadline is not None and not stream:
                    self._read_body(resp, self.deadline)
                return resp
            resp.close()
            target = urljoin(url, location)
            if hop == MAX_REDIRECTS:
                raise RemoteError(f"{method} {short_path(url)}: more than {MAX_REDIRECTS} redirects")
            if safe_origin(target) != self.origin:
                raise RemoteError(f"{method} {short_path(url)}: redirect to another origin ({origin_text(target)}) "
                                  "refused: only the remote's own origin is followed")
            url = target
        raise AssertionError("unreachable")

    def _timeout(self) -> float:
        """Seconds the next connect or read may wait: ``timeout``, or less before the deadline.

        Raises:
            RemoteError: the deadline has passed.
        """
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RemoteError("time budget exceeded")
        return min(self.timeout, left)

    def _read_body(self, resp: requests.Response, deadline: float) -> None:
        """Read a streamed body by what has arrived, giving up at the deadline.

        A remote may trickle bytes for ever: each read waits at most until
        the deadline (the socket's timeout is lowered before it) and returns
        what has arrived (urllib3's ``read1``), so the deadline is checked
        between arrivals, not only after a full buffer.
        """
        chunks = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise requests.Timeout("time budget exceeded while reading the answer")
                sock = getattr(resp.raw.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(min(self.timeout, left))
                try:
                    chunk = resp.raw.read1(65536, decode_content=True)
                except (TimeoutError, urllib3.exceptions.TimeoutError) as exc:
                    raise requests.Timeout(exc) from None
                except (OSError, urllib3.exceptions.HTTPError) as exc:
                    raise requests.ConnectionError(exc) from None
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            resp.close()
        resp._content = b"".join(chunks)  # what requests sets when it reads a body itself

    def _authenticate(self, resp: requests.Response, scope: str) -> bool:
        """Answer a 401 challenge; True when a retry makes sense. Raises: RemoteError."""
        resp.close()
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        if scheme == "basic":
            if self.credentials is None or self._basic:
                return False
            self._basic = True
            return True
        if scheme != "bearer" or not params.get("realm") or scope in self._tokens:
            return False
        realm = params["realm"]
        realm_origin, configured = origin(realm), realm_key(realm) == self.realm
        session = self._session()
        if realm_origin != self.origin and not configured:  # the operator chose a configured realm
            session = pinned_session(self.check_destination(realm_origin, f"token realm {origin_text(realm)}"))
        query: dict[str, Any] = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or scope or None
        auth = None
        if self.credentials and (realm_origin == self.origin or configured):
            auth = self.credentials
            query["account"] = self.credentials[0]
        elif self.credentials:
            self._withheld = realm.split("?", 1)[0]
        with self._lock:
            self.requests += 1
        try:
            got = session.get(realm, params={k: v for k, v in query.items() if v}, auth=auth,
                              timeout=self._timeout(), verify=self.verify, allow_redirects=False)
        except requests.RequestException as exc:
            raise RemoteError(f"token request to {realm} failed ({reason(exc)})") from None
        finally:
            if session is not self._session():
                session.close()
        if got.status_code != 200:
            raise RemoteError(f"token request to {realm}: HTTP {got.status_code}", got.status_code)
        body = json_body(got, realm)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteError(f"token response from {realm} has no token")
        self._tokens[scope] = token
        return True

    def check_destination(self, where: Origin, what: str) -> set[str]:
        """Refuse a host outside the remote's origin that resolves into an internal network
        the remote itself is not in (every address is checked); the checked addresses, which the
        request then dials itself (mirror/pinned.py: no second lookup). Raises: RemoteError."""
        if self._home is None:
            try:
                home = resolve(self.origin[1], self.origin[2])
            except OSError:
                home = set()
            self._home = {internal_network(a) for a in home} - {None}
        try:
            addresses = resolve(where[1], where[2])
        except OSError as exc:
            raise RemoteError(f"{what}: cannot resolve {where[1]} ({exc.strerror or exc})") from None
        for address in sorted(addresses):
            network = internal_network(address)
            if network is not None and network not in self._home:
                named = f"{address} is" if where[1] == address else f"{where[1]} resolves to {address},"
                raise RemoteError(f"{what} refused: {named} an internal address ({network}) outside the "
                                  "remote's own network")
        return addresses

    def _failure(self, method: str, url: str, resp: requests.Response) -> tuple[RemoteError, float | None]:
        status = resp.status_code
        code = error_code(resp)
        what = {401: "unauthorized", 403: "denied", 429: "too many requests"}.get(status, "failed")
        message = f"{method} {url}: HTTP {status} {what}" + (f" ({code})" if code else "")
        if status in (401, 403) and self._withheld:
            message += (f"; the credentials were not sent to the token realm {self._withheld} (not the "
                        f"remote's origin): configure realm = \"{self._withheld}\" for this remote to allow it")
        wait = retry_after(resp.headers.get("Retry-After")) if status in (429, 503) else None
        return RemoteError(message, status, wait), wait

    def _note_rate(self, resp: requests.Response) -> None:
        value = resp.headers.get("ratelimit-remaining")
        if value:
            match = re.match(r"\s*(\d+)", value)
            if match:
                self.rate_remaining = int(match.group(1))

    def get_json(self, url: str, *, scope: str = "", headers: dict | None = None) -> tuple[Any, requests.Response]:
        """GET and parse JSON; (None, resp) on 404. Raises: RemoteError (also for invalid JSON)."""
        resp = self.request("GET", url, scope=scope, headers=headers)
        if resp.status_code == 404:
            return None, resp
        return json_body(resp, url), resp

    def pages(self, first: str, *, scope: str, headers: dict | None = None,
              partial: list[str] | None = None) -> Iterator[tuple[Any, requests.Response]]:
        """Each page's JSON, following ``Link: rel="next"`` on this origin; reasons to stop go to ``partial``."""
        url: str | None = first if "://" in first else self.base_url + first
        seen: set[str] = set()
        while url:
            if url in seen:
                _note(partial, f"Link loops back to {short_path(url)}; listing stopped")
                return
            if len(seen) >= self.max_pages:
                _note(partial, f"stopped after {self.max_pages} pages")
                return
            seen.add(url)
            body, resp = self.get_json(url, scope=scope, headers=headers)
            yield body, resp
            if body is None:
                return
            url = self.next_url(resp, partial)

    def next_url(self, resp: requests.Response, partial: list[str] | None) -> str | None:
        match = _LINK_NEXT.search(resp.headers.get("Link", ""))
        if match is None:
            return None
        url = urljoin(resp.url, match.group(1))
        if safe_origin(url) != self.origin:
            _note(partial, f"Link points to another host ({urlsplit(url).netloc}); not followed")
            return None
        return url


def _note(partial: list[str] | None, message: str) -> None:
    if partial is not None:
        partial.append(message)
