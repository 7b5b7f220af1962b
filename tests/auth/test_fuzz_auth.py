"""Hostile Authorization headers and token requests through the Flask client: always a clear 4xx in the
OCI envelope (or a success for what is valid), never a 5xx or a traceback."""
from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests.support.auth_helpers import client_for, make_app

HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
SCHEMES = st.sampled_from(["Basic", "Bearer", "basic", "BEARER", "Digest", "", "Basic  ", "Bearer\t"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


HEADERS = st.one_of(
    HEADER_TEXT,
    st.builds(lambda s, t: f"{s} {t}", SCHEMES, HEADER_TEXT),
    st.builds(lambda raw: "Basic " + b64(raw), st.binary(max_size=200)),
    st.builds(lambda parts: "Bearer " + ".".join(parts),
              st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=",
                               max_size=60), min_size=1, max_size=5)),
    st.builds(lambda head, body: "Bearer " + b64(json.dumps(head).encode()).rstrip("=") + "."
              + b64(json.dumps(body).encode()).rstrip("=") + ".",
              st.dictionaries(st.sampled_from(["alg", "kid", "typ"]),
                              st.sampled_from(["none", "HS256", "ES256", 1, None])),
              st.dictionaries(st.sampled_from(["iss", "aud", "exp", "sub", "access"]),
                              st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.integers())))),
)
SCOPES = st.lists(st.one_of(HEADER_TEXT, st.builds(lambda t, n, a: f"{t}:{n}:{a}",
                                                    st.sampled_from(["repository", "registry", "x"]),
                                                    HEADER_TEXT, st.text(max_size=20))), max_size=5)
PATHS = ["/v2/", "/v2/team/app/tags/list", "/v2/_catalog", "/v2/public/x/manifests/latest", "/metrics"]


def check(resp, method: str = "GET") -> None:
    assert resp.status_code < 500, resp.get_data()[:300]
    if method == "HEAD":
        assert resp.get_data() == b""
    elif resp.status_code >= 400:
        doc = json.loads(resp.get_data())
        assert doc["errors"][0]["code"] in {"UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
                                            "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_INVALID"}, doc


@pytest.mark.parametrize("scheme", ["basic", "token"])
def test_hostile_authorization_headers(settings, tmp_path, scheme):
    app = make_app(settings, tmp_path, scheme=scheme, metrics=["admin"], failures_per_address=100000)

    @hsettings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(header=HEADERS, path=st.sampled_from(PATHS), method=st.sampled_from(["GET", "HEAD", "POST"]))
    def run(header, path, method):
        resp = client_for(app, header).open(path, method=method)
        if path == "/metrics" and method == "POST":  # outside /v2: werkzeug's own 405 page, as without auth
            assert resp.status_code == 405
            return
        check(resp, method)

    run()


def test_hostile_token_requests(settings, tmp_path):
    app = make_app(settings, tmp_path, scheme="token", failures_per_address=100000)

    @hsettings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(header=st.one_of(st.none(), HEADERS), scopes=SCOPES, service=st.one_of(st.none(), HEADER_TEXT))
    def run(header, scopes, service):
        query = [("scope", s) for s in scopes] + ([("service", service)] if service is not None else [])
        check(client_for(app, header).get("/auth/token", query_string=query))

    run()
