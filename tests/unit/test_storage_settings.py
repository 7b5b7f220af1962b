"""``storage.driver`` and ``[storage.s3]``: every key checked at start, every key documented."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from registry_ext.config import ConfigError, load_settings
from registry_ext.storage.driver.s3 import S3Options
from registry_ext.storage.driver.s3_settings import s3_options

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
GOOD = {"bucket": "regs", "endpoint_url": "http://127.0.0.1:9000", "path_style": True}


def storage(**table):
    return load_settings(data={"storage": table}, environ={})


def test_s3_table_becomes_driver_options():
    settings = storage(driver="s3", s3=dict(GOOD, connect_timeout=3, part_size=8 * 1024 * 1024))
    options = s3_options(settings.storage.s3, ConfigError)
    assert (options.bucket, options.endpoint_url, options.path_style) == ("regs", "http://127.0.0.1:9000", True)
    assert (options.connect_timeout, options.part_size, options.region) == (3, 8 * 1024 * 1024, "us-east-1")


@pytest.mark.parametrize("table, message", [
    ({"driver": "nfs"}, "storage.driver: must be one of filesystem, s3"),
    ({"s3": {"bucket": "regs"}}, 'storage.s3: set storage.driver = "s3"'),
    ({"driver": "s3"}, "storage.s3.bucket: required"),
    ({"driver": "s3", "s3": {"bucket": "Bad_Bucket"}}, "storage.s3.bucket: 3-63 lowercase"),
    ({"driver": "s3", "s3": dict(GOOD, nope=1)}, "unknown key storage.s3.nope"),
    ({"driver": "s3", "s3": dict(GOOD, path_style="yes")}, "storage.s3.path_style: expected bool, got str"),
    ({"driver": "s3", "s3": dict(GOOD, part_size=True)}, "storage.s3.part_size: expected int, got bool"),
    ({"driver": "s3", "s3": dict(GOOD, part_size=1024)}, "storage.s3.part_size: must be 5242880"),
    ({"driver": "s3", "s3": dict(GOOD, access_key="a")}, "give both or neither"),
    ({"driver": "s3", "s3": dict(GOOD, endpoint_url="http://h:1/path")}, "storage.s3.endpoint_url"),
    ({"driver": "s3", "s3": dict(GOOD, prefix="a/../b")}, "storage.s3.prefix"),
    ({"driver": "s3", "s3": dict(GOOD, ca_bundle="/no/such.pem")}, "storage.s3.ca_bundle: no such file"),
    ({"driver": "s3", "s3": dict(GOOD, redirect_expires=10 ** 7)}, "storage.s3.redirect_expires: at most"),
    ({"driver": "s3", "s3": dict(GOOD, read_timeout=0)}, "storage.s3.read_timeout: must be more than 0"),
])
def test_bad_storage_settings_are_refused_naming_the_key(table, message):
    with pytest.raises(ConfigError) as caught:
        storage(**table)
    assert message in str(caught.value)


def test_nginx_offload_is_refused_on_s3_and_gc_and_eviction_are_accepted():
    with pytest.raises(ConfigError, match="server.x_accel_prefix: nginx cannot read blobs from S3"):
        load_settings(data={"storage": {"driver": "s3", "s3": GOOD}, "server": {"x_accel_prefix": "/_blobs"}},
                      environ={})
    upstream = {"hosts": ["docker.io"], "urls": ["https://registry-1.docker.io"], "cache_max_bytes": 10 ** 9,
                "cache_expire_days": 30}
    settings = load_settings(data={"storage": {"driver": "s3", "s3": GOOD}, "gc": {"enabled": True},
                                   "proxy": {"upstreams": {"hub": upstream}}}, environ={})
    assert settings.gc.enabled and settings.storage.driver == "s3"  # gc runs on S3 (docs/gc.md#on-s3)


def test_every_s3_key_is_documented():
    section = DOC[DOC.index("#### `[storage.s3]`"):]
    section = section[:section.index("\n#")]
    documented = set()
    for cell in re.findall(r"^\| (`[^|]+`) \|", section, re.M):
        documented |= set(re.findall(r"`(\w+)`", cell))
    assert documented == {f.name for f in dataclasses.fields(S3Options)}
