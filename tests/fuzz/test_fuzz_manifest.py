"""Hypothesis fuzzing of manifest parsing: raw bytes and structured-but-wrong documents.

Property: ``parse_manifest`` either returns a Manifest whose facts the
registry can store (JSON-serialisable index entry, descriptors, listing
metadata) or raises ``RegistryError(MANIFEST_INVALID)``; never any other
exception. Documents are built from valid pieces mixed with wrong types,
missing fields, huge numbers, nested junk and bad descriptors, so most
examples get past ``orjson.loads`` and exercise the validation itself.
"""
from __future__ import annotations

import base64
import dataclasses

import orjson
from hypothesis import example, given, strategies as st

from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci import mediatypes as mt
from registry_ext.oci.manifest import Manifest, parse_manifest
from registry_ext.oci.metadata import describe, wants_config
from registry_ext.services.manifest_entry import index_entry
from registry_ext.storage import ManifestRecord
from tests.support.fuzz_settings import fuzz_settings
from tests.support.fuzz_values import CONTENT_TYPES, HUGE, JUNK, MEDIA_TYPES, STRING_MAPS

GOOD_DIGEST = "sha256:" + "a" * 64
DIGESTS = st.one_of(st.just(GOOD_DIGEST), st.just("sha512:" + "b" * 128), st.just(mt.EMPTY_DIGEST),
                    st.sampled_from(["", "sha256:", "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha256:../../x",
                                     "sha256:" + "a" * 64 + "\n"]), st.text(max_size=80), JUNK)
SIZES = st.one_of(st.integers(0, 2**20), st.sampled_from(HUGE), st.just(1.0), st.just(True), st.just("3"), JUNK)
PLATFORMS = st.one_of(st.fixed_dictionaries({"os": st.sampled_from(["linux", "windows", "", 7]),
                                             "architecture": st.sampled_from(["amd64", "arm64", None])},
                                            optional={"variant": st.sampled_from(["v8", "", ["x"]])}), JUNK)


def maybe_junk(strategy):
    """Mostly the right kind of value, sometimes anything."""
    return st.one_of(strategy, strategy, strategy, JUNK)


DESCRIPTORS = st.fixed_dictionaries(
    {"mediaType": maybe_junk(MEDIA_TYPES), "digest": DIGESTS, "size": SIZES},
    optional={"urls": maybe_junk(st.lists(st.text(max_size=30), max_size=3)),
              "annotations": maybe_junk(STRING_MAPS), "platform": PLATFORMS,
              "artifactType": maybe_junk(st.text(max_size=40)), "data": maybe_junk(st.text(max_size=20))})
DESCRIPTOR_OR_JUNK = st.one_of(DESCRIPTORS, DESCRIPTORS, JUNK)

DOCUMENTS = st.fixed_dictionaries(
    {"schemaVersion": st.one_of(st.just(2), st.sampled_from([2.0, "2", 1, 3, True, None, 2**64 - 1]), JUNK)},
    optional={"mediaType": maybe_junk(MEDIA_TYPES), "config": DESCRIPTOR_OR_JUNK,
              "layers": st.one_of(st.lists(DESCRIPTOR_OR_JUNK, max_size=4), JUNK),
              "manifests": st.one_of(st.lists(DESCRIPTOR_OR_JUNK, max_size=4), JUNK),
              "subject": st.one_of(DESCRIPTORS, JUNK), "annotations": maybe_junk(STRING_MAPS),
              "artifactType": maybe_junk(st.text(max_size=40)), "extra": JUNK})
VALID_DESCRIPTORS = st.fixed_dictionaries(
    {"mediaType": st.sampled_from([mt.OCI_EMPTY, "application/vnd.oci.image.layer.v1.tar+gzip", mt.OCI_MANIFEST]),
     "digest": st.sampled_from([GOOD_DIGEST, "sha512:" + "b" * 128]), "size": st.integers(0, 2**63 - 1)},
    optional={"annotations": STRING_MAPS, "artifactType": st.text(max_size=20),
              "platform": st.fixed_dictionaries(
                  {"os": st.text(max_size=8), "architecture": st.text(max_size=8)},
                  optional={"variant": st.text(max_size=4), "os.version": st.text(max_size=8),
                            "os.features": st.lists(st.text(max_size=8), max_size=2)}),
              "urls": st.lists(st.text(max_size=20), max_size=2),
              "data": st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())})
VALID_DOCUMENTS = st.one_of(
    st.fixed_dictionaries({"schemaVersion": st.just(2), "config": VALID_DESCRIPTORS,
                           "layers": st.lists(VALID_DESCRIPTORS, max_size=3)},
                          optional={"mediaType": st.sampled_from(sorted(mt.IMAGE_MANIFESTS)),
                                    "subject": VALID_DESCRIPTORS, "annotations": STRING_MAPS,
                                    "artifactType": st.text(max_size=20)}),
    st.fixed_dictionaries({"schemaVersion": st.just(2), "mediaType": st.sampled_from(sorted(mt.INDEXES)),
                           "manifests": st.lists(VALID_DESCRIPTORS, max_size=3)},
                          optional={"subject": VALID_DESCRIPTORS, "annotations": STRING_MAPS}))
CONFIGS = st.one_of(st.none(), JUNK, st.fixed_dictionaries(
    {}, optional={"created": JUNK, "os": st.one_of(st.text(max_size=8), JUNK),
                  "architecture": st.one_of(st.text(max_size=8), JUNK), "variant": JUNK,
                  "config": st.one_of(st.fixed_dictionaries({"Labels": st.one_of(STRING_MAPS, JUNK)}), JUNK)}))


def check(data: bytes, content_type: str | None, config=None) -> Manifest | None:
    """Parse; on success, check the registry can store what it learnt."""
    try:
        manifest = parse_manifest(data, content_type)
    except RegistryError as err:
        assert err.code is ErrorCode.MANIFEST_INVALID and err.status == 400, err
        assert orjson.loads(err.body())["errors"][0]["code"] == "MANIFEST_INVALID"
        return None
    assert manifest.media_type in mt.MANIFESTS
    for desc in [manifest.config, manifest.subject, *manifest.layers, *manifest.children]:
        if desc is not None:
            orjson.dumps(dataclasses.asdict(desc))
    wants_config(manifest)
    record = ManifestRecord(GOOD_DIGEST, manifest.media_type, len(data), 1_700_000_000_000)
    orjson.dumps(index_entry(record, manifest, config))
    manifest.required_blobs()
    return manifest


@fuzz_settings(1000)
@given(st.binary(max_size=300), CONTENT_TYPES)
@example(b"", None)
@example(b"[" * 2000 + b"]" * 2000, mt.OCI_MANIFEST)
@example(b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:' + b"a" * 64 + b'", "size": '
         + b"9" * 400 + b"}}", None)
@example(b'{"schemaVersion":2,"mediaType":"\\ud800"}', None)
@example(b"\xef\xbb\xbf{}", None)
def test_arbitrary_bytes_parse_or_are_manifest_invalid(data, content_type):
    check(data, content_type)


@fuzz_settings(300)
@given(DOCUMENTS, CONTENT_TYPES, CONFIGS)
def test_structured_wrong_documents_parse_or_are_manifest_invalid(doc, content_type, config):
    check(orjson.dumps(doc), content_type, config)


@fuzz_settings(100)
@given(DOCUMENTS, st.integers(0, 200))
def test_truncated_documents_are_manifest_invalid(doc, cut):
    data = orjson.dumps(doc)
    if cut < len(data):
        check(data[:cut], mt.OCI_MANIFEST)


@fuzz_settings(200)
@given(st.lists(DESCRIPTORS, max_size=3), CONFIGS, STRING_MAPS)
def test_listing_metadata_never_crashes(children, config, annotations):
    """Whatever platforms, labels and config an accepted manifest carries, describe() copes."""
    for doc, kind in (({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": children,
                        "annotations": annotations}, mt.OCI_INDEX),
                      ({"schemaVersion": 2, "config": {"mediaType": mt.OCI_EMPTY, "digest": GOOD_DIGEST,
                                                       "size": 2}, "layers": children}, mt.OCI_MANIFEST)):
        manifest = check(orjson.dumps(doc), kind, config)
        if manifest is not None:
            orjson.dumps(describe(manifest, config))


@fuzz_settings(300)
@given(VALID_DOCUMENTS, st.data())
def test_valid_documents_parse_and_one_wrong_field_is_manifest_invalid(doc, data):
    """A valid document parses; the same document with one field replaced or removed parses or is refused."""
    assert check(orjson.dumps(doc), None) is not None, doc
    target = doc
    children = [v for v in doc.values() if isinstance(v, dict) and v] + [
        d for v in doc.values() if isinstance(v, list) for d in v]
    if children and data.draw(st.booleans()):
        target = data.draw(st.sampled_from(children))
    key = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(JUNK)
    check(orjson.dumps(doc), data.draw(CONTENT_TYPES))
