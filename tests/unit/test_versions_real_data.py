"""Version ordering of tags (registry_ext/oci/versions.py) on the real tag history of the official images:
every tag, ``newer_than`` spot checks, and the ZRANGEBYLEX emulation against a real redis-server.

The data set (``official-images-tag-history.jsonl.gz``, one ``{"image", "tag", ...}`` object a line) is
looked for in ``shared/data/`` next to the repository (``<repository>/../shared/data/``), or at the path in
``REGISTRY_EXT_DATASET``; without it these tests are skipped, naming the path they looked at.
"""
from __future__ import annotations

import collections
import gzip
import json
import os
import random
import uuid
from pathlib import Path

import pytest

from registry_ext.oci.versions import (after_bound, before_precedence_bound, family_bounds, member, member_tag,
                                       order_key, parse_tag)
from tests.support.versions import newer_than, sort_tags, zrangebylex, zrevrangebylex

REPOSITORY = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("REGISTRY_EXT_DATASET")
            or REPOSITORY.parent / "shared" / "data" / "official-images-tag-history.jsonl.gz")


# --------------------------------------------------------------------------- the real tag history

@pytest.fixture(scope="module")
def real_tags() -> dict[str, set[str]]:
    if not DATA.is_file():
        pytest.skip(f"the official images' tag history is not at {DATA} (set REGISTRY_EXT_DATASET to its path)")
    tags: dict[str, set[str]] = collections.defaultdict(set)
    with gzip.open(DATA, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            tags[row["image"]].add(row["tag"])
    return tags


def test_all_real_tags(real_tags):
    every = sorted(set().union(*real_tags.values()))
    assert len(every) > 40000
    kinds = collections.Counter(parse_tag(t).kind for t in every)
    assert kinds["release"] > 30000 and kinds["prerelease"] > 10000 and kinds["nonversion"] < 1200
    for t in every:
        assert all(0x21 <= ord(c) <= 0x7E for c in order_key(t))
    ordered = sort_tags(every)
    shuffled = every[:]
    random.Random(7).shuffle(shuffled)
    assert sort_tags(shuffled) == ordered                      # deterministic
    members = [member(t).encode() for t in ordered]
    assert all(x < y for x, y in zip(members, members[1:]))    # strictly increasing: total, no ties
    assert sorted(members) == members                          # Redis memcmp order is the version order
    first_non = next(i for i, t in enumerate(ordered) if not parse_tag(t).is_version)
    assert all(not parse_tag(t).is_version for t in ordered[first_non:])


def test_real_newer_than_spot_checks(real_tags):
    node = newer_than("20.11-alpine", real_tags["node"])
    assert node and all(str(parse_tag(t).family) == "N.N-alpine" for t in node)
    assert node[-1] == "20.12-alpine" and "21.0-alpine" in node
    py = newer_than("3.13.0rc2-slim-bookworm", real_tags["python"])
    assert "3.13.0rc3-slim-bookworm" in py and "3.13.0-slim-bookworm" in py
    assert py[-1] == "3.13.0rc3-slim-bookworm" and all(t.endswith("-slim-bookworm") for t in py)
    assert newer_than("3", real_tags["alpine"]) == []          # date tags are another family
    assert newer_than("20240606", real_tags["alpine"])[-1] == "20240807"
    assert newer_than("3.19", real_tags["alpine"])[-1] == "3.20"
    assert newer_than("8u412-b08-jre-jammy", real_tags["eclipse-temurin"])[-1] == "8u422-b05-jre-jammy"
    jdk = newer_than("21.0.4_7-jdk-jammy", real_tags["eclipse-temurin"])
    assert jdk[-1] == "21.0.5_11-jdk-jammy" and all(str(parse_tag(t).family) == "N.N.N_B-jdk-jammy" for t in jdk)
    mongo = newer_than("7.0.0-rc5-jammy", real_tags["mongo"])   # rc10 after rc8, not before rc2
    assert mongo[-5:] == ["7.0.0-jammy", "7.0.0-rc10-jammy", "7.0.0-rc8-jammy", "7.0.0-rc7-jammy",
                          "7.0.0-rc6-jammy"]
    redis_ = newer_than("7.2.4-alpine", real_tags["redis"])
    assert redis_[-1] == "7.2.5-alpine" and all(parse_tag(t).kind == "release" for t in redis_)
    assert not any("rc" in t for t in newer_than("7.0.0-bullseye", real_tags["redis"]))
    assert newer_than("1.25-alpine-perl", real_tags["nginx"])[-2:] == ["1.27-alpine-perl", "1.26-alpine-perl"]
    assert newer_than("latest", real_tags["nginx"]) == [] and newer_than("mainline", real_tags["nginx"]) == []
    traefik = newer_than("v2.11.0", real_tags["traefik"])
    assert traefik[-1] == "v2.11.1" and all(str(parse_tag(t).family) == "vN.N.N" for t in traefik)
    assert newer_than("2.11.0", real_tags["traefik"])[-1] == "2.11.1"


def test_real_data_in_a_real_redis(real_tags, redis_client):
    """The emulation above agrees with ZRANGEBYLEX of a real redis-server on all node tags."""
    key = f"test:versions:{uuid.uuid4().hex}"
    node = sorted(real_tags["node"])
    try:
        for i in range(0, len(node), 1000):
            redis_client.zadd(key, {member(t): 0 for t in node[i:i + 1000]})
        members = [member(t) for t in node]
        assert [m.decode() for m in redis_client.zrangebylex(key, "-", "+")] == zrangebylex(members, "-", "+")
        for v in ("20.11", "20.11.1-alpine3.19", "lts", "0.1", "99", "18.0.0-rc1"):
            real = [m.decode() for m in redis_client.zrangebylex(key, after_bound(v), "+")]
            assert real == zrangebylex(members, after_bound(v), "+")
            real = [m.decode() for m in redis_client.zrevrangebylex(key, before_precedence_bound(v), "-")]
            assert real == zrevrangebylex(members, before_precedence_bound(v), "-")
        fb = family_bounds("20.11-alpine")
        scanned = [member_tag(m.decode()) for m in redis_client.zrevrangebylex(key, fb.max, fb.min)]
        assert [t for t in scanned if fb.accepts(t)] == newer_than("20.11-alpine", node)
    finally:
        redis_client.delete(key)
