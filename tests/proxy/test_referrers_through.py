"""Referrers and cosign-style signature tags through the mirror.

- Our own registry as the upstream (it has the referrers API): the mirror answers from it, filters
  by artifactType, and falls back to the cache when the upstream is stopped.
- Debian docker-registry (2.8: no referrers API, 404) as the upstream: the cache's referrers are
  served; a referrer pulled by digest is stored, so they list it.
- A legacy cosign ``sha256-<hex>.sig`` tag pushed upstream is pulled through by tag and by digest.
"""
from __future__ import annotations

import pytest

from registry_ext import create_app
from registry_ext.config import replace
from tests.support.e2e_mirror_seed import CONFIG, LAYER, OCI_MANIFEST, Pusher, digest, referrer
from tests.support.mirror_upstreams import mirror_app, REPO, AppServer, push, start_upstreams

FAST = {"timeout": 5, "max_retries": 0, "retry_delay": 0.05}
SBOM = "application/vnd.example.sbom"


def mirror(settings, url: str):
    app = mirror_app(settings, {"up": {"hosts": ["up.example"], "urls": [url],
                                                                  **FAST}})
    return app.test_client()


def seed_referrer(url: str, subject: bytes) -> tuple[bytes, str]:
    """Push an SBOM-type referrer of ``subject`` (by digest) to ``url``; its bytes and digest."""
    pusher = Pusher(url)
    pusher.blob(REPO, CONFIG)
    pusher.blob(REPO, LAYER)
    body = referrer(subject)
    return body[0], pusher.manifest(REPO, None, body)


@pytest.fixture
def ours(settings, tmp_path):
    """Our registry as the upstream (own storage and key prefix), holding library/app:latest."""
    from tests.support.mirror_upstreams import make_image

    up = replace(replace(settings, "storage", root=str(tmp_path / "upstream")),
                 "redis", key_prefix=settings.redis.key_prefix + "up")
    server = AppServer(create_app(up))
    image = make_image("ours")
    push(server.url, REPO, "latest", image)
    try:
        yield server, image
    finally:
        server.stop()


@pytest.fixture
def distribution():
    (started,) = start_upstreams(1, prefix="rf")
    try:
        yield started
    finally:
        started.server.stop()


def referrers(client, subject: str, query: str = ""):
    resp = client.get(f"/v2/{REPO}/referrers/{subject}?ns=up.example{query}")
    assert resp.status_code == 200, resp.data
    assert resp.content_type == "application/vnd.oci.image.index.v1+json"
    assert resp.headers["OCI-Namespace"] == "up.example"
    return resp


def test_referrers_come_from_an_upstream_with_the_api_and_from_the_cache_when_it_stops(settings, ours):
    server, image = ours
    body, ref = seed_referrer(server.url, image.manifest)
    client = mirror(settings, server.url)
    resp = referrers(client, image.digest)
    found = resp.json["manifests"]
    assert [(d["digest"], d["size"], d.get("artifactType")) for d in found] == [(ref, len(body), SBOM)]
    assert "X-Regext-Mirror" not in resp.headers
    filtered = referrers(client, image.digest, "&artifactType=application/other")
    assert filtered.json["manifests"] == [] and filtered.headers["OCI-Filters-Applied"] == "artifactType"
    # pulled through by digest: stored, so the cache's own referrers list it
    assert client.get(f"/v2/{REPO}/manifests/{ref}?ns=up.example").data == body
    server.stop()
    stale = referrers(client, image.digest)
    assert [d["digest"] for d in stale.json["manifests"]] == [ref]
    assert stale.headers["X-Regext-Mirror"] == "stale"


def test_an_upstream_without_the_api_falls_back_to_the_cache(settings, distribution):
    body, ref = seed_referrer(distribution.url, distribution.image.manifest)
    client = mirror(settings, distribution.url)
    subject = distribution.image.digest
    assert client.get(f"/v2/{REPO}/manifests/{subject}?ns=up.example").status_code == 200
    empty = referrers(client, subject)
    assert empty.json["manifests"] == [] and "X-Regext-Mirror" not in empty.headers  # a 404 upstream: no API
    assert client.get(f"/v2/{REPO}/manifests/{ref}?ns=up.example").data == body
    listed = referrers(client, subject).json["manifests"]
    assert [(d["digest"], d.get("artifactType")) for d in listed] == [(ref, SBOM)]
    assert client.get(f"/v2/up/{REPO}/referrers/{subject}").json["manifests"] == listed


def test_a_cosign_signature_tag_is_pulled_through_by_tag_and_by_digest(settings, distribution):
    subject = distribution.image.digest
    signature = referrer(distribution.image.manifest)[0].replace(b'"subject"', b'"x-subject"')  # a plain manifest
    Pusher(distribution.url).blob(REPO, CONFIG)
    Pusher(distribution.url).blob(REPO, LAYER)
    tag = f"sha256-{subject.split(':')[1]}.sig"
    sig_digest = Pusher(distribution.url).manifest(REPO, tag, (signature, OCI_MANIFEST))
    client = mirror(settings, distribution.url)
    by_tag = client.get(f"/v2/up.example/{REPO}/manifests/{tag}")
    assert by_tag.status_code == 200 and by_tag.data == signature
    assert by_tag.headers["Docker-Content-Digest"] == sig_digest == digest(signature)
    by_digest = client.get(f"/v2/{REPO}/manifests/{sig_digest}?ns=up.example")
    assert by_digest.status_code == 200 and by_digest.data == signature
    assert tag in client.get(f"/v2/{REPO}/tags/list?ns=up.example").json["tags"]
    (listed,) = client.get(f"/v2/up/{REPO}/_regext/tags?kind=signature").json["tags"]
    assert listed["signature"] == {"kind": "sig", "subject": subject} and listed["mirror"]["upstream"] == "up"
