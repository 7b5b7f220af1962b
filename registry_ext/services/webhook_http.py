"""One webhook POST: to a configured URL only, to a checked address, within a deadline, no redirects.

- The host is resolved here and the connection made to the address that
  was checked (no second lookup a DNS change could redirect). Addresses
  that are not globally routable (loopback, private, link-local, CGNAT,
  multicast, unspecified, documentation ranges) are refused unless the
  endpoint says ``allow_private = true``.
- A 3xx is a failed attempt: redirects are never followed.
- ``timeout`` bounds the whole attempt, connect to last header byte (a
  timer closes the socket of a server that trickles its answer); at most
  4 KiB of the body is read.
- The body is signed: ``X-Regext-Signature: sha256=<hex>`` is HMAC-SHA256
  with the endpoint's secret over ``<X-Regext-Timestamp>.<body>``.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from registry_ext import __version__
from registry_ext.webhook_config import Endpoint

BODY_READ_MAX = 4096


class DeliveryError(Exception):
    """The attempt failed; the message says why (kept with a dead letter)."""


def allowed_address(host: str, port: int, allow_private: bool) -> str:
    """The first resolved address of ``host`` that may be dialled.

    Raises:
        DeliveryError: it does not resolve, or only to refused addresses.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DeliveryError(f"cannot resolve {host}: {exc}") from None
    refused = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped \
            else address
        if allow_private or plain.is_global:
            return sockaddr[0]
        refused.append(str(address))
    raise DeliveryError(f"{host} resolves to {', '.join(refused)}: not a public address "
                        "(set allow_private = true for this endpoint to allow it)")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def post(endpoint: Endpoint, delivery_id: str, body: bytes) -> int:
    """POST ``body``; returns the 2xx status.

    Raises:
        DeliveryError: refused address, connection error, timeout, redirect or non-2xx status.
    """
    url = urlsplit(endpoint.url)
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    address = allowed_address(url.hostname, port, endpoint.allow_private)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": f"registry-ext/{__version__} webhooks",
               "X-Regext-Delivery": delivery_id, "X-Regext-Timestamp": timestamp, **dict(endpoint.headers)}
    if endpoint.secret:
        headers["X-Regext-Signature"] = signature(endpoint.secret, timestamp, body)
    conn = _Pinned(url.hostname, port, address, endpoint.timeout, tls)
    watchdog = threading.Timer(endpoint.timeout, conn.abort)
    watchdog.start()
    try:
        conn.request("POST", (url.path or "/") + (f"?{url.query}" if url.query else ""), body, headers)
        resp = conn.getresponse()
        resp.read(BODY_READ_MAX)
        status = resp.status
    except (OSError, http.client.HTTPException) as exc:
        if conn.aborted:
            raise DeliveryError(f"no complete answer within {endpoint.timeout} s") from None
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        conn.close()
    if 300 <= status < 400:
        raise DeliveryError(f"HTTP {status}: redirects are not followed")
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")
    return status


class _Pinned(http.client.HTTPConnection):
    """An HTTP(S) connection to a fixed address, with ``host`` in the Host header and TLS name check."""

    def __init__(self, host: str, port: int, address: str, timeout: float, tls: bool):
        super().__init__(host, port, timeout=timeout)
        self.address, self.tls, self.aborted = address, tls, False

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock

    def abort(self) -> None:
        """The deadline passed: break the socket so the blocked read returns."""
        self.aborted = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
