"""Hypothesis fuzzing of the write paths through the Flask test client: manifest PUT and chunked uploads.

Manifests: documents that reference blobs really in the repository (among
them image configs that are invalid JSON, deeply nested, or of the wrong
types, which the listing metadata reads), with one field mutated, a random
reference and Content-Type. Uploads: random sequences of PATCH/PUT with
random Content-Range, Content-Length and bodies. Property: 201/202/204 or a
4xx in the OCI envelope, never a 5xx; an accepted manifest reads back
byte for byte and the listings still answer; an upload's offset only moves
by accepted chunks and a blob appears only under its true digest.
"""
from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from hypothesis import given, strategies as st

from tests.support.fuzz_repo import build, check_response, fake_upstream
from tests.support.fuzz_settings import fuzz_settings
from tests.support.fuzz_values import CONTENT_TYPES, JUNK, STRING_MAPS
from tests.support.oci_client import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, descriptor, push_blob, sha256_digest

NAME = "fuzz/push"
HEADER_SAFE_TYPES = CONTENT_TYPES.filter(lambda t: t is None or not any(c in t for c in "\r\n\x00"))
CONFIGS = [b'{"os":"linux","architecture":"amd64","config":{"Labels":{"org.opencontainers.image.version":"1"}}}',
           b"not json at all \xff", b"[" * 5000 + b"]" * 5000, b'{"os": 7, "architecture": ["x"], "created": {}}',
           b'{"config": {"Labels": [1, 2]}, "created": 18446744073709551616}', b"{}", b'"a string"',
           b'{"os":"linux","architecture":"arm64","variant":"\\u0000v8"}']
LAYERS = [b"layer-a", b"", b"\x00" * 100]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, redis_server):
    with fake_upstream() as remote:
        repo = build(tmp_path_factory.mktemp("fuzz-push") / "data", redis_server, remote.url)
        for blob in CONFIGS + LAYERS:
            push_blob(repo.client, NAME, blob)
        yield repo


def documents():
    """Image manifests over the repository's real blobs (configs with and without a platform)."""
    config = st.sampled_from(CONFIGS).map(lambda b: descriptor(
        OCI_CONFIG, b, **({"platform": {"os": "linux", "architecture": "x"}} if len(b) % 2 else {})))
    layer = st.sampled_from(LAYERS).map(lambda b: descriptor("application/vnd.oci.image.layer.v1.tar", b))
    image = st.fixed_dictionaries({"schemaVersion": st.just(2), "mediaType": st.just(OCI_MANIFEST),
                                   "config": config, "layers": st.lists(layer, max_size=3)},
                                  optional={"annotations": STRING_MAPS, "artifactType": st.text(max_size=20)})
    return image


def mutate(doc: dict, data) -> dict:
    if data.draw(st.booleans(), label="mutate"):
        key = data.draw(st.sampled_from(sorted(doc)), label="key")
        doc[key] = data.draw(JUNK, label="value")
    return doc


@fuzz_settings(150)
@given(data=st.data())
def test_manifest_puts_never_answer_5xx(repo, data):
    client = repo.client
    doc = mutate(data.draw(documents(), label="doc"), data)
    if data.draw(st.booleans(), label="as index"):  # an index over this very manifest, when it is accepted
        body = json.dumps(doc).encode()
        if client.put(f"/v2/{NAME}/manifests/{sha256_digest(body)}", data=body,
                      headers={"Content-Type": OCI_MANIFEST}).status_code == 201:
            doc = mutate({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [dict(
                descriptor(OCI_MANIFEST, body), platform={"os": "linux", "architecture": "amd64"})]}, data)
    body = json.dumps(doc).encode()
    reference = data.draw(st.one_of(st.sampled_from(["latest", "1.0.0", "v2-rc.1", sha256_digest(body),
                                                     "sha512:" + hashlib.sha512(body).hexdigest(), "x" * 129]),
                                    st.text(alphabet="abc019._-:", min_size=1, max_size=20)), label="reference")
    resp = client.put(f"/v2/{NAME}/manifests/{reference}", data=body,
                      headers={"Content-Type": data.draw(HEADER_SAFE_TYPES, label="type") or ""})
    check_response(resp, f"PUT {reference} {body[:200]!r}", ok=(201,))
    if resp.status_code == 201:
        digest = resp.headers["Docker-Content-Digest"]
        assert client.get(f"/v2/{NAME}/manifests/{digest}").get_data() == body
        for url in (f"/v2/{NAME}/tags/list", f"/v2/{NAME}/_regext/tags?sort=semver",
                    f"/v2/{NAME}/_regext/manifests", f"/v2/{NAME}/_regext/digests/{digest}/tags"):
            resp = client.get(url)
            assert resp.status_code == 200, (url, resp.get_data()[:300])


CHUNK = st.binary(max_size=40)
CONTENT_RANGE = st.one_of(st.none(), st.sampled_from(["0-0", "0-2", "3-5", "bytes 0-9", "5-4", "0-", "x", "-1-2",
                                                      "0-99999999999999999999",
                                                      "9223372036854775806-9223372036854775807"]),
                          st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda t: f"{t[0]}-{t[1]}"))
CONTENT_LENGTH = st.one_of(st.none(), st.sampled_from(["0", "3", "-1", "abc", "99999999999999999999"]))


@fuzz_settings(100)
@given(steps=st.lists(st.tuples(CHUNK, CONTENT_RANGE, CONTENT_LENGTH), max_size=5),
       final=st.tuples(CHUNK, CONTENT_RANGE), claim=st.sampled_from(["right", "wrong", "bad"]))
def test_chunked_uploads_never_answer_5xx_and_keep_a_true_offset(repo, steps, final, claim):
    client = repo.client
    resp = client.post(f"/v2/{NAME}/blobs/uploads/")
    assert resp.status_code == 202
    location, accepted = resp.headers["Location"], uuid.uuid4().bytes  # each example's blob is new
    assert client.patch(location, data=accepted).status_code == 202
    for body, content_range, length in steps:
        headers = {k: v for k, v in (("Content-Range", content_range), ("Content-Length", length)) if v is not None}
        resp = client.patch(location, data=body, headers=headers)
        check_response(resp, f"PATCH {headers} {body!r}", ok=(202,))
        if resp.status_code == 202:
            accepted += body
        status = client.get(location)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{max(len(accepted) - 1, 0)}"
    body, content_range = final
    whole = accepted + body
    digest = {"right": sha256_digest(whole), "wrong": sha256_digest(whole + b"!"), "bad": "sha256:xyz"}[claim]
    resp = client.put(f"{location}?digest={digest}", data=body,
                      headers={"Content-Range": content_range} if content_range else {})
    check_response(resp, f"PUT {content_range} {body!r} {claim}", ok=(201,))
    visible = client.head(f"/v2/{NAME}/blobs/{sha256_digest(whole)}").status_code == 200
    if resp.status_code == 201:
        assert claim == "right" and visible
    else:
        assert not visible
        # a client gives up a session it could not finish: the cap on open sessions (50 per address)
        # would otherwise refuse this test's later examples
        assert client.delete(location).status_code in (204, 404)
