"""The HTTP side against a fake misbehaving remote: auth, retries, rate limits, bad JSON, lying Links, timeouts."""
from __future__ import annotations

import base64
import time

import pytest

from tests.support.fake_remote import FakeRemote, oci_error
from registry_ext.mirror.remote import (RemoteClient, RemoteError, normalize_url, parse_challenge, remote_repo,
                                        retry_after)
from registry_ext.mirror.sides import RemoteSide

D1, D2 = (f"sha256:{c * 64}" for c in "12")
MT = "application/vnd.oci.image.manifest.v1+json"
DIGESTS = {"v1": D1, "v2": D2}


def plain_registry(method, path, headers, tags=("v1", "v2")):
    """A well-behaved registry without extensions: tags/list and manifest HEADs."""
    if path.startswith("/v2/app/tags/list"):
        return 200, {}, {"name": "app", "tags": list(tags)}
    if path.startswith("/v2/app/manifests/"):
        tag = path.rsplit("/", 1)[1]
        if tag in DIGESTS:
            return 200, {"Docker-Content-Digest": DIGESTS[tag], "Content-Type": MT}, b""
        return oci_error("MANIFEST_UNKNOWN")
    return oci_error("NAME_UNKNOWN") if path.startswith("/v2/app") is False and "/app/" in path else (404, {}, b"")


def side(fake, **kw) -> RemoteSide:
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("timeout", 5)
    return RemoteSide(RemoteClient(fake.url, **kw))


def test_plain_fallback_lists_and_heads():
    with FakeRemote(plain_registry) as fake:
        got = side(fake).list("app")
    assert got.method == "plain" and got.error is None and got.partial == []
    assert {t: i.digest for t, i in got.tags.items()} == DIGESTS
    assert got.requests == 3  # tags/list, 2 HEADs: what the naive method sends
    assert fake.requests[0][2]["Accept"].startswith("application/vnd.oci.image.index.v1+json")
    heads = [h for m, _p, h in fake.requests if m == "HEAD"]
    assert all("application/vnd.oci.image.index.v1+json" in h["Accept"] for h in heads)


def test_bearer_token_flow_anonymous_and_basic():
    issued = []

    def handler(method, path, headers):
        if path.startswith("/token"):
            issued.append((path, headers.get("Authorization")))
            return 200, {}, {"access_token": "tok", "expires_in": 300}
        if headers.get("Authorization") != "Bearer tok":
            realm = f"http://127.0.0.1:{port}/token"
            return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake",scope="repository:app:pull"'}, \
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        return plain_registry(method, path, headers)

    with FakeRemote(handler) as fake:
        port = fake.url.rsplit(":", 1)[1]
        got = side(fake).list("app")
        assert got.error is None and len(got.tags) == 2
        assert "scope=repository%3Aapp%3Apull" in issued[-1][0] and issued[-1][1] is None
        issued.clear()
        got = side(fake, username="bob", password="pw").list("app")
        assert got.error is None
        assert issued[-1][1] == "Basic " + base64.b64encode(b"bob:pw").decode()
        assert "account=bob" in issued[-1][0]


def test_denied_is_a_clear_error():
    with FakeRemote(lambda m, p, h: (403, {}, {"errors": [{"code": "DENIED", "message": "no"}]})) as fake:
        got = side(fake).list("app")
    assert got.error.endswith("HTTP 403 denied (DENIED)")


def test_429_retry_after_then_success():
    state = {"n": 0}
    slept = []

    def handler(method, path, headers):
        if path.startswith("/v2/app/tags/list"):
            state["n"] += 1
            if state["n"] <= 2:
                return 429, {"Retry-After": "2"}, {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}
        return plain_registry(method, path, headers)

    with FakeRemote(handler) as fake:
        got = side(fake, sleep=slept.append).list("app")
    assert got.error is None and len(got.tags) == 2
    assert slept == [2.0, 2.0]


def test_429_retry_after_too_long_fails_fast():
    with FakeRemote(lambda m, p, h: (429, {"Retry-After": "3600"}, b"")) as fake:  # noqa: E501
        got = side(fake, max_wait=10).list("app")
        assert "Retry-After 3600s exceeds 10s" in got.error
        assert len(fake.requests) == 1


def test_ratelimit_remaining_zero_stops():
    def handler(method, path, headers):
        status, hdrs, body = plain_registry(method, path, headers)
        left = "0" if "tags/list" in path else "5"
        return status, {**hdrs, "ratelimit-remaining": f"{left};w=21600"}, body

    with FakeRemote(handler) as fake:
        got = side(fake, concurrency=1).list("app")
        assert got.partial and "rate limit exhausted" in got.partial[0]
        assert len(fake.paths("HEAD")) == 0


def test_5xx_retried_with_backoff():
    state = {"n": 0}
    slept = []

    def handler(method, path, headers):
        if method == "HEAD" and path.endswith("/v1"):
            state["n"] += 1
            if state["n"] <= 2:
                return 503, {}, b"busy"
        return plain_registry(method, path, headers)

    with FakeRemote(handler) as fake:
        got = side(fake, sleep=slept.append, backoff=0.5).list("app")
    assert got.error is None and got.tags["v1"].digest == D1
    assert len(slept) == 2 and 0 <= slept[0] <= 0.5 and 0 <= slept[1] <= 1.0


def test_5xx_forever_is_partial_with_the_reason():
    def handler(method, path, headers):
        if method == "HEAD" and path.endswith("/v2"):
            return 500, {}, b"oops"
        return plain_registry(method, path, headers)

    with FakeRemote(handler) as fake:
        got = side(fake, retries=2).list("app")
    assert list(got.tags) == ["v1"]
    assert got.partial == ["1 of 2 tags could not be resolved (first: v2: HEAD "
                           f"{fake.url}/v2/app/manifests/v2: HTTP 500 failed)"]


@pytest.mark.parametrize("body", [b'{"name": "app", "tags": ["v1"', b"<html>", b'{"name": "app", "tags": 7}'])
def test_truncated_or_invalid_json(body):
    def handler(method, path, headers):
        if path.startswith("/v2/app/tags/list"):
            return 200, {"Content-Type": "application/json"}, body
        return plain_registry(method, path, headers)

    with FakeRemote(handler) as fake:
        got = side(fake).list("app")
    assert got.error.startswith("/v2/app/tags/list")
    assert "invalid JSON" in got.error or "unexpected JSON" in got.error


def test_link_loop_and_lying_link_are_partial():
    def loop(method, path, headers):
        if path.startswith("/v2/app/tags/list"):
            return 200, {"Link": '</v2/app/tags/list?n=10000>; rel="next"'}, {"name": "app", "tags": ["v1"]}
        return plain_registry(method, path, headers)

    with FakeRemote(loop) as fake:
        got = side(fake).list("app")
    assert got.partial == ["Link loops back to /v2/app/tags/list?n=10000; listing stopped"]
    assert list(got.tags) == ["v1"]

    def liar(method, path, headers):
        if path.startswith("/v2/app/tags/list"):
            page = int(path.rsplit("page=", 1)[1]) if "page=" in path else 0
            return 200, {"Link": f'</v2/app/tags/list?page={page + 1}>; rel="next"'}, {"name": "app", "tags": ["v1"]}
        return plain_registry(method, path, headers)

    with FakeRemote(liar) as fake:
        got = side(fake).list("app")
        assert got.partial == ["Link does not advance (the page repeats earlier tags); listing stopped"]
        assert len(fake.paths("GET")) == 2  # 2 pages

    def elsewhere(method, path, headers):
        if path.startswith("/v2/app/tags/list"):
            return 200, {"Link": '<http://203.0.113.9/v2/app/tags/list?x>; rel="next"'}, {"name": "app", "tags": ["v1"]}
        return plain_registry(method, path, headers)

    with FakeRemote(elsewhere) as fake:
        got = side(fake).list("app")
    assert got.partial == ["Link points to another host (203.0.113.9); not followed"]


def test_missing_repository_and_unreachable_and_slow():
    with FakeRemote(lambda m, p, h: oci_error("NAME_UNKNOWN")) as fake:
        got = side(fake).list("app")
    assert got.missing and got.error is None

    got = RemoteSide(RemoteClient("http://127.0.0.1:9", retries=0)).list("app")
    assert "cannot connect" in got.error

    def slow(method, path, headers):
        time.sleep(1.5)
        return plain_registry(method, path, headers)

    with FakeRemote(slow) as fake:
        started = time.monotonic()
        got = side(fake, timeout=0.3, retries=1).list("app")
    assert got.error.endswith("timed out after 0.3s") and time.monotonic() - started < 1.5


def test_index_shaped_tags_list_needs_one_request_per_page():
    def entry(tag, digest):
        return {"mediaType": MT, "digest": digest, "size": 1,
                "annotations": {"org.opencontainers.image.ref.name": tag}}

    def handler(method, path, headers):
        if path.startswith("/v2/app/tags/list"):
            if "cursor=" in path:
                return 200, {}, {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                 "manifests": [entry("v2", D2)]}
            return 200, {"Link": '</v2/app/tags/list?n=1&cursor=x>; rel="next"'}, \
                {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [entry("v1", D1)]}
        return 404, {}, b""

    with FakeRemote(handler) as fake:
        got = side(fake).list("app")
    assert got.method == "enriched" and {t: i.digest for t, i in got.tags.items()} == DIGESTS
    assert got.requests == 2 and not fake.paths("HEAD")


def test_helpers():
    assert normalize_url("docker.io") == "https://registry-1.docker.io"
    assert normalize_url("https://index.docker.io/") == "https://registry-1.docker.io"
    assert normalize_url("localhost:5000") == "http://localhost:5000"
    assert normalize_url("ghcr.io") == "https://ghcr.io"
    assert normalize_url("ghcr.io", plain_http=True) == "http://ghcr.io"
    with pytest.raises(RemoteError):
        normalize_url("ftp://x")
    assert remote_repo("https://registry-1.docker.io", "nginx") == "library/nginx"
    assert remote_repo("https://registry-1.docker.io", "bitnami/nginx") == "bitnami/nginx"
    assert remote_repo("https://ghcr.io", "nginx") == "nginx"
    assert parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:samalba/my-app:pull,push"') == (
        "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                   "scope": "repository:samalba/my-app:pull,push"})
    assert retry_after("7") == 7.0 and retry_after(None) is None and retry_after("soon") is None
    assert 0 <= retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0


def test_internal_networks():
    from registry_ext.mirror.addresses import internal_network

    assert internal_network("8.8.8.8") is None and internal_network("2606:4700::1111") is None
    assert str(internal_network("64:ff9b::a9fe:a9fe")) == "169.254.0.0/16"  # NAT64 of the metadata service
    assert str(internal_network("::ffff:127.0.0.1")) == "127.0.0.0/8"
    assert str(internal_network("fe80::1%eth0")) == "fe80::/10"
    assert str(internal_network("::7f00:1")) == "::/96"  # IPv4-compatible (deprecated) form
    assert str(internal_network("192.0.2.7")) == "192.0.2.7/32"  # other non-global: a network of its own
    assert str(internal_network("100.64.1.1")) == "100.64.0.0/10"


@pytest.mark.parametrize("trickle", [None, 0.2], ids=["never answers", "trickles its body"])
def test_a_deadline_bounds_the_whole_client_not_each_request(trickle):
    """timeout 1.5 s x 4 attempts would be 6 s and more; the deadline (1.5 s from now) ends it all."""
    from tests.support.fake_remote import SilentRemote

    with SilentRemote(trickle=trickle) as remote:
        started = time.monotonic()
        client = RemoteClient(remote.url, timeout=1.5, retries=3, backoff=0.1, deadline=started + 1.5)
        with pytest.raises(RemoteError):
            client.get_json("/v2/app/tags/list")
        elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 2.2, elapsed
    assert client.requests == 1, client.requests  # no retry was started after the deadline
