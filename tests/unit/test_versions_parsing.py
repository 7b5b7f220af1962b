"""Version ordering of tags (registry_ext/oci/versions.py), parsing: what ``parse_tag`` makes of real tags,
its fields, and that it never raises.
"""
from __future__ import annotations

import pytest
from hypothesis import example, given, strategies as st

from registry_ext.oci.versions import Family, member, member_tag, order_key, parse_tag
from tests.support.versions import ATT, H64, REF, SIG


# --------------------------------------------------------------------------- real tags, table-driven

# tag, kind, numbers, prerelease, variant, family (str)
TABLE = [
    ("20", "release", (20,), (), "", "N"),
    ("20.11", "release", (20, 11), (), "", "N.N"),
    ("20.11.1", "release", (20, 11, 1), (), "", "N.N.N"),
    ("20.11.1-alpine3.19", "release", (20, 11, 1), (), "alpine3.19", "N.N.N-alpine3.19"),
    ("lts", "nonversion", (), (), "", "nonversion:lts"),
    ("current-alpine", "nonversion", (), (), "", "nonversion:current-alpine"),
    ("lts-bookworm", "nonversion", (), (), "", "nonversion:lts-bookworm"),
    ("3.13.0rc2-slim-bookworm", "prerelease", (3, 13, 0), ("rc", 2), "slim-bookworm", "N.N.N-slim-bookworm"),
    ("3.14.0a5-bullseye", "prerelease", (3, 14, 0), ("a", 5), "bullseye", "N.N.N-bullseye"),
    ("3.12.4", "release", (3, 12, 4), (), "", "N.N.N"),
    ("3.12", "release", (3, 12), (), "", "N.N"),
    ("3.3-rc-onbuild", "prerelease", (3, 3), ("rc",), "onbuild", "N.N-onbuild"),
    ("1.25-alpine-perl", "release", (1, 25), (), "alpine-perl", "N.N-alpine-perl"),
    ("mainline", "nonversion", (), (), "", "nonversion:mainline"),
    ("stable-alpine", "nonversion", (), (), "", "nonversion:stable-alpine"),
    ("16.3", "release", (16, 3), (), "", "N.N"),
    ("16", "release", (16,), (), "", "N"),
    ("16-bookworm", "release", (16,), (), "bookworm", "N-bookworm"),
    ("17beta2", "prerelease", (17,), ("beta", 2), "", "N"),
    ("3.20", "release", (3, 20), (), "", "N.N"),
    ("edge", "nonversion", (), (), "", "nonversion:edge"),
    ("20240606", "release", (20240606,), (), "", "YYYYMMDD"),
    ("7.2.5-alpine", "release", (7, 2, 5), (), "alpine", "N.N.N-alpine"),
    ("5.0.6-32bit", "release", (5, 0, 6), (), "32bit", "N.N.N-32bit"),
    ("8.8-m03-alpine3.23", "prerelease", (8, 8), ("m", 3), "alpine3.23", "N.N-alpine3.23"),
    ("1.22.4-bookworm", "release", (1, 22, 4), (), "bookworm", "N.N.N-bookworm"),
    ("1.23rc1", "prerelease", (1, 23), ("rc", 1), "", "N.N"),
    ("1.10-rc-nanoserver-sac2016", "prerelease", (1, 10), ("rc",), "nanoserver-sac2016", "N.N-nanoserver-sac2016"),
    ("tip-20260215-bookworm", "nonversion", (), (), "", "nonversion:tip-20260215-bookworm"),
    ("v1.30.2", "release", (1, 30, 2), (), "", "vN.N.N"),
    ("v1.31.0-rc.0", "prerelease", (1, 31, 0), ("rc", 0), "", "vN.N.N"),
    ("v1.31.0-alpha.3", "prerelease", (1, 31, 0), ("alpha", 3), "", "vN.N.N"),
    ("v3.7.0-ea.3-windowsservercore-ltsc2025", "prerelease", (3, 7, 0), ("ea", 3), "windowsservercore-ltsc2025",
     "vN.N.N-windowsservercore-ltsc2025"),
    ("windowsservercore-ltsc2022", "nonversion", (), (), "", "nonversion:windowsservercore-ltsc2022"),
    ("21-jdk", "release", (21,), (), "jdk", "N-jdk"),
    ("21.0.8_9-jdk-noble", "release", (21, 0, 8), (), "jdk-noble", "N.N.N_B-jdk-noble"),
    ("8u412-b08-jre", "release", (8, 412), (), "jre", "NuN-bN-jre"),
    ("8.1.25RC1-zts-bullseye", "prerelease", (8, 1, 25), ("rc", 1), "zts-bullseye", "N.N.N-zts-bullseye"),
    ("1.2.3_build.5", "release", (1, 2, 3), (), "", "N.N.N_B"),
    ("1.2.3-rc1-alpine", "prerelease", (1, 2, 3), ("rc", 1), "alpine", "N.N.N-alpine"),
    ("1.2.3-r5", "release", (1, 2, 3), (), "", "N.N.N-rN"),
    ("1.2.3-1", "release", (1, 2, 3), (), "", "N.N.N-N"),
    ("2024-01-15", "release", (2024, 1, 15), (), "", "YYYY-MM-DD"),
    ("2024.01.15", "release", (2024, 1, 15), (), "", "N.N.N"),
    ("1.0.0-SNAPSHOT", "prerelease", (1, 0, 0), ("snapshot",), "", "N.N.N"),
    ("2.0.0-M1", "prerelease", (2, 0, 0), ("m", 1), "", "N.N.N"),
    ("1.0.0-preview1", "prerelease", (1, 0, 0), ("preview", 1), "", "N.N.N"),
    ("3.0-dev", "prerelease", (3, 0), ("dev",), "", "N.N"),
    ("1.0.0-alpha.beta", "prerelease", (1, 0, 0), ("alpha", "beta"), "", "N.N.N"),
    ("1.1.1a", "nonversion", (), (), "", "nonversion:1.1.1a"),
    ("1.2.3.4.5", "nonversion", (), (), "", "nonversion:1.2.3.4.5"),
    ("1" * 21, "nonversion", (), (), "", "nonversion:" + "1" * 21),
    ("abc1234", "nonversion", (), (), "", "nonversion:abc1234"),
    ("1a2b3c4d5e6f", "nonversion", (), (), "", "nonversion:1a2b3c4d5e6f"),
    ("latest", "nonversion", (), (), "", "nonversion:latest"),
]


@pytest.mark.parametrize("tag,kind,numbers,prerelease,variant,family", TABLE)
def test_real_tag_table(tag, kind, numbers, prerelease, variant, family):
    p = parse_tag(tag)
    assert (p.tag, p.kind, p.numbers, p.prerelease, p.variant, str(p.family)) == (
        tag, kind, numbers, prerelease, variant, family)


def test_fields_of_prefix_revision_build_and_signatures():
    assert parse_tag("V2.1").v_prefix == "V" and parse_tag("v2.1").v_prefix == "v"
    assert parse_tag("1.2.3-r5").revision == 5 and parse_tag("1.2.3-1").revision == 1
    assert parse_tag("1.2.3-rc.1_build.5").build == "build.5"
    assert parse_tag("1.2.3-rc.1_build.5").prerelease == ("rc", 1)
    assert parse_tag("8u342-b07.1-jre").build == "b07.1"
    assert parse_tag("nanoserver-1809").kind == "nonversion"
    assert parse_tag("1.16.13-nanoserver-1809").revision is None  # a number after a variant piece is variant
    for tag, kind in ((SIG, "sig"), (ATT, "att"), (f"sha256-{H64}.sbom", "sbom"), (REF, "referrers")):
        p = parse_tag(tag)
        assert (p.kind, p.signature_kind, p.subject_digest) == ("signature", kind, "sha256:" + H64)
    assert parse_tag(f"sha256-{H64[:-1]}.sig").kind == "nonversion"
    assert parse_tag(f"sha256-{H64.upper()}.sig").kind == "nonversion"


@given(st.text())
@example("\ud800")
@example("1.2.3-\x00")
def test_parse_never_raises_and_keys_are_printable(text):
    p = parse_tag(text)
    assert p.kind in ("release", "prerelease", "nonversion", "signature") and p.tag == text
    key = order_key(text)
    assert key and all(0x21 <= ord(c) <= 0x7E for c in key)
    assert member_tag(member(text)) == text
    hash(p.family)


def test_family_type():
    assert parse_tag("1.2-alpine").family == Family("N.N", "alpine")
    assert str(Family("N.N", "")) == "N.N"
