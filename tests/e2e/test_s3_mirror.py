"""The pull-through mirror on S3 with two hosts (#13 on #12): a real ``docker-registry`` upstream behind
the relay, two ``registry-ext serve`` hosts on one bucket (Ceph RGW) and one Redis in front.

- 16 clients, 8 on each host, pulling one cold blob at once: one upstream GET (the fill lease is in
  Redis), every client gets the right bytes, and the blob lands in the bucket (a later pull through the
  other host needs no upstream);
- a manifest pulled through one host by tag is served by the other from the bucket within its TTL.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.e2e_proxy import Upstream, make_image, mirror_toml, pull_blob, push_image
from tests.support.relay import Relay
from tests.support.s3_hosts import s3_hosts

pytestmark = pytest.mark.e2e
HOST = "registry.test"
NAME = "library/app"
BIG = 20 << 20
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


@pytest.fixture
def world(tmp_path, s3_server, redis_server):
    upstream = Upstream(tmp_path, "hub").start()
    relay = Relay(upstream.url).start()
    image = make_image("hub", (BIG,))
    push_image(upstream.url, NAME, "1", image)
    proxy = mirror_toml({"hub": {"hosts": [HOST], "urls": [relay.url], "timeout": 10, "max_retries": 2,
                                 "retry_delay": 0.2, "manifest_ttl": 300}})
    hosts = s3_hosts(tmp_path, s3_server, redis_server, extra_toml=proxy)
    try:
        for host in hosts:
            host.start()
        yield upstream, relay, hosts, image
    finally:
        for host in hosts:
            host.close()
        relay.close()
        upstream.stop()


def test_two_hosts_on_s3_one_upstream_fetch(world):
    _upstream, relay, hosts, image = world
    big = image.layers[-1]
    relay.rate = 32 << 20  # ~0.6 s fill: the clients arrive while it runs
    barrier = threading.Barrier(16)

    def pull(i: int) -> tuple[str, int]:
        barrier.wait(30)
        return pull_blob(f"{hosts[i % 2].url}/v2/{NAME}/blobs/{big}?ns={HOST}")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(pull, range(16)))
    assert results == [(big, BIG)] * 16
    path = f"/v2/{NAME}/blobs/{big}"
    assert relay.count("GET", path) == 1, relay.counts
    relay.rate = 0
    for host in hosts:  # from the bucket now, through either host
        assert pull_blob(f"{host.url}/v2/{NAME}/blobs/{big}?ns={HOST}") == (big, BIG)
    assert relay.count("GET", path) == 1, relay.counts


def test_a_manifest_pulled_through_one_host_is_served_by_the_other_from_the_bucket(world):
    _upstream, relay, (first, second), image = world
    resp = requests.get(f"{first.url}/v2/{NAME}/manifests/1?ns={HOST}", headers=ACCEPT, timeout=30)
    assert resp.status_code == 200 and resp.content == image.manifest
    asked = sum(n for (method, p), n in relay.counts.items() if "/manifests/" in p)
    resp = requests.get(f"{second.url}/v2/{NAME}/manifests/1?ns={HOST}", headers=ACCEPT, timeout=30)
    assert resp.status_code == 200 and resp.content == image.manifest
    assert sum(n for (method, p), n in relay.counts.items() if "/manifests/" in p) == asked  # within the TTL
    tags = requests.get(f"{second.url}/v2/hub/{NAME}/_regext/tags", timeout=30)  # the cache, enriched
    assert tags.status_code == 200, tags.text
    (entry,) = tags.json()["tags"]
    assert entry["name"] == "1" and entry["digest"] == image.digest and entry["mirror"]["upstream"] == "hub"
