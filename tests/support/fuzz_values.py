"""Hypothesis strategies the fuzz tests share: junk JSON values, media and content types, string maps."""
from __future__ import annotations

from hypothesis import strategies as st

from registry_ext.oci import mediatypes as mt

HUGE = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), -1]

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.sampled_from(HUGE)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=5)
MEDIA_TYPES = st.sampled_from(sorted(mt.MANIFESTS) + [
    mt.OCI_EMPTY, "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar", "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON",
    "", "text/html", "a" * 300, "\x00", "application/json; charset=utf-8"])
CONTENT_TYPES = st.one_of(st.none(), MEDIA_TYPES, MEDIA_TYPES.map(lambda t: t + "; charset=utf-8"),
                          st.text(max_size=40))
STRING_MAPS = st.dictionaries(st.text(max_size=40), st.text(max_size=40), max_size=4)
