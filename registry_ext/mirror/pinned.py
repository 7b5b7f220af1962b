"""HTTP sessions that dial only addresses already checked: no second DNS lookup.

A token realm on another host is resolved and every address checked
(``RemoteClient.check_destination``) before it is asked. If the request
then resolved the name again, a DNS server answering differently the second
time (DNS rebinding) could send it into the internal network after all. A
pinned session connects to the checked addresses themselves, in order, while
the URL's host name still goes into ``Host``, SNI and certificate checks.
"""
from __future__ import annotations

import socket

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError


class _Pinned:
    """Mixin for urllib3 connections: ``_new_conn`` dials ``addresses`` instead of resolving the host."""

    addresses: tuple[str, ...] = ()

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None  # type: ignore[attr-defined]
        failure: OSError | None = None
        for address in self.addresses:
            try:
                sock = socket.create_connection((address, self.port), timeout)  # type: ignore[attr-defined]
            except socket.timeout:
                raise ConnectTimeoutError(self, f"connection to {address} timed out") from None
            except OSError as exc:
                failure = exc
                continue
            for option in self.socket_options or ():  # type: ignore[attr-defined]
                sock.setsockopt(*option)
            return sock
        raise NewConnectionError(self, f"cannot connect to {', '.join(self.addresses)}: {failure}")  # type: ignore


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, addresses: tuple[str, ...]):
        self.addresses = addresses  # before super().__init__, which builds the pool manager
        super().__init__(pool_maxsize=1)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        pinned = {"addresses": self.addresses}
        http = type("PinnedHTTPConnection", (_Pinned, HTTPConnection), pinned)
        https = type("PinnedHTTPSConnection", (_Pinned, HTTPSConnection), pinned)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


def pinned_session(addresses: set[str]) -> requests.Session:
    """A session whose every connection goes to one of ``addresses`` (sorted, tried in turn)."""
    session = requests.Session()
    adapter = _PinnedAdapter(tuple(sorted(addresses)))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
