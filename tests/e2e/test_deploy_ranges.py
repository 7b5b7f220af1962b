"""A blob download's `Range` gets the same answer on every path.

Behind the shipped nginx a blob GET is sent by nginx (X-Accel-Redirect), which applies the client's
`Range` itself, while HEAD and every refusal come from the app; `registry-ext serve` without nginx answers
both itself. The same headers go to all four (GET and HEAD, through nginx and straight to the app), for
a 100-byte blob and the empty blob: status, Content-Range, Content-Length and the bytes must agree, and a
416 is an OCI error with `Content-Range: bytes */<size>` everywhere. Then 400 random headers from the
grammar's alphabet go to nginx's GET and the app's HEAD.
"""
from __future__ import annotations

import random

import pytest

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import push_blob, random_bytes
from tests.support.e2e_raw import get, oci_error

pytestmark = pytest.mark.e2e
REPO = "e2e/ranges/app"
DATA = random_bytes(100, seed=16)
EMPTY = b""

CASES = [
    None, "bytes=0-9", "bytes=90-", "bytes=-10", "bytes=0-0", "bytes=99-99", "bytes=95-200", "bytes=-500",
    "bytes=100-", "bytes=5-3", "bytes=-0", "items=0-5", "bytes=", "bytes=0-1,5-6", "bytes=0-1,7-3",
    # unparseable: the app used to ignore these (HEAD 200) while nginx answered GET with an HTML 416
    "bytes=abc", "bytes=-", "bytes=1-2x", "bytes=1-2,x", "bytes=\t1-2", "bytes=1-2;", "bytes=,1-2",
    "bytes=9223372036854775808-", "bytes=1-" + "9" * 3000, "bytes=1--2", "bytes=+1-2",
    # what nginx accepts and the app's old regular expression did not
    "BYTES=3-4", "bytes= 3 - 4 ", "bytes=0003-0004",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DeployStack(tmp_path_factory.mktemp("ranges")).start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def blobs(stack):
    return {len(data): push_blob(stack.url, REPO, data) for data in (DATA, EMPTY)}


def answer(port: int, method: str, digest: str, headers: dict[str, str]) -> tuple:
    """(status, Content-Range, length, body or None) of one request, checked for the error envelope."""
    extra = b"".join(f"\r\n{k}: {v}".encode("latin-1") for k, v in headers.items())
    resp = get(port, f"/v2/{REPO}/blobs/{digest}", method=method, extra=extra)
    if resp.status == 416 and method == "GET":
        oci_error(resp, 416)
    length = int(resp.headers["content-length"]) if resp.status != 416 else None
    return resp.status, resp.headers.get("content-range"), length, resp.body if method == "GET" else None


def expected_body(status: int, content_range: str | None, data: bytes) -> bytes:
    if status == 200:
        return data
    first, last = map(int, content_range.split(" ")[1].split("/")[0].split("-"))
    return data[first:last + 1]


def four_answers(stack, registry, digest: str, headers: dict[str, str]) -> list[tuple]:
    return [answer(port, method, digest, headers) for port in (stack.port, registry.port)
            for method in ("GET", "HEAD")]


@pytest.mark.parametrize("data", [DATA, EMPTY], ids=["100 bytes", "empty"])
def test_every_range_gets_one_answer_on_every_path(stack, blobs, registry, data):
    digest = push_blob(registry.url, REPO, data)
    assert digest == blobs[len(data)]
    for header in CASES:
        headers = {} if header is None else {"Range": header}
        got = four_answers(stack, registry, digest, headers)
        (status, content_range, length, body), head = got[0], got[1]
        assert all(g[:3] == got[0][:3] for g in got), (header, got)
        assert head[3] is None and got[2][3] == body, (header, got)
        if status == 416:
            assert content_range == f"bytes */{len(data)}", (header, got)
        else:
            assert status in (200, 206) and body == expected_body(status, content_range, data), (header, got)
            assert length == len(body), (header, got)


def test_if_range_applies_the_range_only_for_the_blob_etag(stack, blobs, registry):
    digest = push_blob(registry.url, REPO, DATA)
    for if_range, status in ((f'"{digest}"', 206), ('"sha256:other"', 200), (f'W/"{digest}"', 200),
                             ("Tue, 01 Dec 2026 10:00:00 GMT", 200), ("", 200)):
        got = four_answers(stack, registry, digest, {"Range": "bytes=1-2", "If-Range": if_range})
        assert {g[0] for g in got} == {status}, (if_range, got)


def test_random_ranges_get_the_same_status_from_nginx_and_the_app(stack, blobs):
    rng = random.Random(1616)
    alphabet = "bytes=0123456789-, " * 3 + "BYTESx;+\t"
    for size, digest in blobs.items():
        for _ in range(200):
            header = "bytes=" * rng.randint(0, 1) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
            header = header.strip() or "bytes=0-"
            nginx = answer(stack.port, "GET", digest, {"Range": header})
            app = answer(stack.port, "HEAD", digest, {"Range": header})
            assert nginx[:3] == app[:3], (size, header, nginx, app)
