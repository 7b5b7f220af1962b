"""Hypothesis fuzzing of every listing endpoint's path and query through the Flask test client.

Property: whatever the query string (known parameters with valid, hostile
or forged values, unknown parameters, undecodable bytes), the answer is
200/304, or a 4xx carrying a well-formed OCI error envelope; never a 5xx,
never a traceback. A 200 with a ``Link`` is followed once with the same
property. The repository (tests/support/fuzz_repo.py) makes every listing path run:
semver/time/name sorts, filters, cursors, signatures, referrers, history.
"""
from __future__ import annotations

import base64
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, strategies as st

from tests.support.fuzz_repo import NAME, OTHER, build, check_response, fake_upstream
from tests.support.fuzz_settings import fuzz_settings
from tests.support.oci_client import OCI_INDEX

SETTINGS = fuzz_settings(100)
UNKNOWN_DIGEST = "sha256:" + "0" * 64
HOSTILE = ["..", "../../etc/passwd", "..%2f", "%2e%2e", "\x00", "\\", "/", "a" * 2000, "ａ", "\u212a", "\n",
           "-1", "1e3", "٣", " 5", "0x10", "9" * 40, "18446744073709551616", "true", "null", "[]", "{}", "*",
           "(", "[", "\ufffd", "sha256:", "%", "&", "=", "#", "+", " "]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, redis_server):
    with fake_upstream() as remote:
        yield build(tmp_path_factory.mktemp("fuzz-listings") / "data", redis_server, remote.url)


def forged_tokens():
    """Continuation tokens with the right shape and wrong contents."""
    position = st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**64 - 1), st.booleans(), st.none(),
                         st.lists(st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=8), st.none()),
                                  max_size=3))
    payload = st.fixed_dictionaries({"v": st.sampled_from([1, 1, 2, "1", None])},
                                    optional={"s": st.sampled_from(["name", "semver", "created", "updated", "x"]),
                                              "d": st.sampled_from([True, False, 0, "desc"]),
                                              "p": position, "m": position})
    return payload.map(lambda p: base64.urlsafe_b64encode(orjson.dumps(p)).decode().rstrip("="))


def values(repo, *valid: str):
    """Query values: the parameter's own valid ones, real cursors, forged ones, hostile and random text."""
    good = st.sampled_from(list(valid) or [""])
    return st.one_of(good, good, good, good, st.sampled_from(repo.cursors), forged_tokens(),
                     st.sampled_from(HOSTILE), st.text(max_size=30), st.integers(-5, 2**70).map(str))


def endpoints(repo) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """Endpoint -> (paths to try, {parameter: its valid values})."""
    d = repo.digests
    tags = ["1.0.0", "latest", "v3", "nope", "_under", "sha256-" + d["1.0.0"][7:] + ".sig"]
    names = [NAME, OTHER, "fuzz/unknown", "Fuzz/App", "fuzz//app", "fuzz/../app", NAME, NAME, NAME]
    filters = {"prefix": ["1.", "v", "sha256-"], "glob": ["1.*", "*-alpine", "[!a]*"], "regex": ["^1\\.", "(a|b)+$"],
               "range": [">=1.2,<2", "~1.0", "^1", "1.x", "*", "!=1.2.0"], "kind": ["release", "prerelease,signature",
               "nonversion"], "variant": ["alpine", ""], "digest": [d["1.0.0"], d["edge"], UNKNOWN_DIGEST],
               "n": ["0", "1", "2", "100", "10001"], "last": ["1.0.0", "latest", "zzz", "0"]}
    return {
        "tags/list": ([f"/v2/{n}/tags/list" for n in names], {"n": ["0", "1", "5"], "last": ["1.0.0", "v"]}),
        "tags/list-index": ([f"/v2/{n}/tags/list" for n in names], {
            **filters, "sort_by": ["name", "created_at", "updated_at", "semver"], "sort_order": ["asc", "desc"]}),
        "catalog": (["/v2/_catalog"], {"n": ["0", "1", "3"], "last": [NAME, "a", "zzz"]}),
        "referrers": ([f"/v2/{n}/referrers/{x}"
                       for n in names[:3] for x in (d["1.0.0"], UNKNOWN_DIGEST, "x", "sha256:")],
                      {"artifactType": ["application/vnd.example.sbom", ""], "last": [repo.referrer, "a"]}),
        "ext-tags": ([f"/v2/{n}/_regext/tags" for n in names], {
            **filters, "sort": ["name", "semver", "created", "updated"], "order": ["asc", "desc"]}),
        "newer": ([f"/v2/{n}/_regext/tags/{t}/newer" for n in names[:3] for t in tags],
                  {"digest": [d["1.0.0"], UNKNOWN_DIGEST], "n": ["0", "1", "10"]}),
        "digest-tags": ([f"/v2/{n}/_regext/digests/{x}/tags" for n in names[:3]
                         for x in (d["1.0.0"], repo.untagged, UNKNOWN_DIGEST, "sha256:zz", "latest")], {}),
        "manifests": ([f"/v2/{n}/_regext/manifests" for n in names], {
            "n": ["0", "1", "3"], "order": ["asc", "desc"], "tagged": ["true", "false"]}),
        "orphans": ([f"/v2/{n}/_regext/orphans" for n in names], {}),
        "tag-history": ([f"/v2/{n}/_oci/tag-history/{t}" for n in names[:3] for t in tags + ["", "a%2Fb", ".x"]], {
            "n": ["0", "1", "3"], "before": ["2030-01-01T00:00:00Z", "2000-01-01T00:00:00.5+02:00"],
            "since": ["1970-01-01T00:00:00Z"], "digest": [d["latest"], d["edge"]]}),
        "mirror-diff": ([f"/v2/{n}/_regext/mirror-diff" for n in names[:3]], {
            "remote": ["upstream", "nope"], "remote_repo": [NAME, OTHER, "../x", "X"], "untagged": ["true", "1"]}),
        "discover": (["/v2/_oci/ext/discover"] + [f"/v2/{n}/_oci/ext/discover" for n in names], {}),
        "updates": (["/v2/_regext/updates"], {
            "repository": names, "prefix": ["fuzz/", "", "f"], "glob": ["fuzz/*", "**", "*/app", "[a", "A*"],
            "n": ["0", "1", "3", "1001"], "wait": ["0", "86400"], "recent": ["0", "1", "5", "101"],
            "watch": ["0" * 32, "x", "../x"], "cursor": [feed_cursor(repo)]}),
        "atom": (["/v2/_regext/feed.atom"] + [f"/v2/{n}/_regext/feed.atom" for n in names], {
            "repository": names, "prefix": ["fuzz/"], "glob": ["fuzz/*", "**"], "n": ["0", "1", "51"],
            "deleted": ["true", "false"]}),
    }


_feed_cursors: dict[int, str] = {}


def feed_cursor(repo) -> str:
    """A real cursor of the update feed, from before the fixture's changes (so pages have events)."""
    if id(repo) not in _feed_cursors:
        _feed_cursors[id(repo)] = repo.client.get("/v2/_regext/updates?recent=0").json["next"]
    return _feed_cursors[id(repo)]


def queries(repo, known: dict[str, list[str]]):
    """A raw query string: known parameters (repeated sometimes), unknown ones, or undecodable bytes."""
    names = st.sampled_from(sorted(known) + ["cursor"]) if known else st.just("cursor")
    known_pair = names.flatmap(lambda k: st.tuples(st.just(k), values(repo, *known.get(k, []))))
    pairs = st.lists(st.one_of(known_pair, known_pair, known_pair, st.tuples(st.text(max_size=8), st.text(max_size=8))),
                     max_size=5)
    if "remote" in known:  # mirror-diff: mostly name the configured remote, so the comparison runs
        pairs = st.tuples(st.sampled_from([[("remote", "upstream")]] * 4 + [[]]), pairs).map(lambda t: t[0] + t[1])
    encoded = pairs.map(lambda ps: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in ps).encode())
    raw = st.sampled_from([b"%ff%fe", b"n=%ED%A0%80", b"regex=%ED%A0%80", b"prefix=%C0%AF", b"n=%",
                           b"last=%zz", b"&&==&", b"n=1&n=2", b"cursor=\xff", b"regex=\xed\xa0\x80"])
    return st.one_of(encoded, encoded, encoded, raw, st.binary(max_size=40))


def fire(repo, endpoint: str, data) -> None:
    paths, known = endpoints(repo)[endpoint]
    path = data.draw(st.sampled_from(paths), label="path")
    query = data.draw(queries(repo, known), label="query")
    headers = {}
    if endpoint == "tags/list-index":
        headers["Accept"] = OCI_INDEX
    if data.draw(st.booleans(), label="conditional"):
        headers["If-None-Match"] = data.draw(st.sampled_from(['"x"', "*", "W/\"a\", \"b\"", "\x7f"]))
    method = data.draw(st.sampled_from(["GET", "GET", "HEAD"]), label="method")
    # A WSGI server hands the raw query bytes over as latin-1 text (PEP 3333); so does this.
    resp = repo.client.open(path, method=method, query_string=query.decode("latin-1"), headers=headers)
    check_response(resp, f"{method} {path}?{query!r}", head=method == "HEAD")
    link = resp.headers.get("Link")
    if resp.status_code == 200 and link:
        target = link[1:link.index(">")]
        check_response(repo.client.open(target, method="GET", headers=headers), f"Link {target}")


ENDPOINTS = ["tags/list", "tags/list-index", "catalog", "referrers", "ext-tags", "newer", "digest-tags",
             "manifests", "orphans", "tag-history", "mirror-diff", "discover", "updates", "atom"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@SETTINGS
@given(data=st.data())
def test_listing_queries_never_answer_5xx(repo, endpoint, data):
    fire(repo, endpoint, data)


def test_the_fuzzed_repository_answers_every_listing(repo):
    """The fixture really exercises the listings: every endpoint answers 200 for its plain URL."""
    for endpoint, (paths, _known) in endpoints(repo).items():
        headers = {"Accept": OCI_INDEX} if endpoint == "tags/list-index" else {}
        query = "?remote=upstream" if endpoint == "mirror-diff" else ""
        resp = repo.client.get(paths[0] + query, headers=headers)
        assert resp.status_code == 200, (endpoint, resp.get_data()[:300])
