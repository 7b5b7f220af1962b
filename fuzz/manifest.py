"""atheris harness: ``parse_manifest`` on arbitrary bytes and Content-Types.

Expected: a Manifest whose descriptors and index entry serialise, or
``RegistryError(MANIFEST_INVALID)``. Anything else is a crash. Run for as
long as you like (fuzz/README.md)::

    python fuzz/manifest.py -dict=fuzz/manifest.dict -max_total_time=600 /tmp/corpus fuzz/corpus/manifest
"""
import dataclasses
import sys

import atheris

with atheris.instrument_imports(include=["registry_ext"]):
    import orjson

    from registry_ext.errors import ErrorCode, RegistryError
    from registry_ext.oci import mediatypes as mt
    from registry_ext.oci.manifest import parse_manifest
    from registry_ext.oci.metadata import describe

CONTENT_TYPES = [None, "", *sorted(mt.MANIFESTS), mt.OCI_MANIFEST + "; charset=utf-8", "application/json",
                 "text/plain", mt.OCI_EMPTY]


def test_one_input(data: bytes) -> None:
    # The first byte picks the Content-Type, the rest is the body (the seed corpus is written so).
    content_type = CONTENT_TYPES[data[0] % len(CONTENT_TYPES)] if data else None
    body = data[1:]
    try:
        manifest = parse_manifest(body, content_type)
    except RegistryError as err:
        if err.code is not ErrorCode.MANIFEST_INVALID:
            raise AssertionError(f"unexpected code {err.code}") from err
        return
    for desc in (manifest.config, manifest.subject, *manifest.layers, *manifest.children):
        if desc is not None:
            orjson.dumps(dataclasses.asdict(desc))
    orjson.dumps(describe(manifest, None))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
