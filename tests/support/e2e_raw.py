"""Raw HTTP/1.1 requests on a fresh socket: bytes exactly as given (no client-side URL normalising)."""
from __future__ import annotations

import dataclasses
import json
import socket


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.headers} {self.body[:300]!r}"


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 30) -> RawResponse:
    """Send ``head`` (request line and headers, without the blank line), ``Connection: close``, then
    ``body``; read the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_part, _sep, rest = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _c, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split(" ", 2)[1]), headers, rest)


def get(port: int, target: bytes | str, method: str = "GET", extra: bytes = b"", body: bytes = b"") -> RawResponse:
    """``METHOD target HTTP/1.1`` with a Host header, ``extra`` header lines and an optional body."""
    target = target.encode("latin-1") if isinstance(target, str) else target
    head = method.encode() + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1"
    if body:
        head += b"\r\nContent-Length: %d" % len(body)
    return raw_request(port, head + extra, body)


def oci_error(resp: RawResponse, status: int, code: str | None = None, source: str | None = None) -> dict:
    """Assert a JSON OCI error envelope with ``status`` (and ``code``, ``detail.source``); return the error."""
    assert resp.status == status, str(resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), str(resp)
    errors = resp.json()["errors"]
    assert isinstance(errors, list) and errors and isinstance(errors[0].get("message"), str), str(resp)
    if code is not None:
        assert errors[0]["code"] == code, str(resp)
    if source is not None:
        assert errors[0].get("detail", {}).get("source") == source, str(resp)
    return errors[0]
