"""atheris harness: repository names, tags, digests, upload ids and version tags from one string.

Expected errors: ``RegistryError`` with NAME_INVALID / MANIFEST_INVALID /
DIGEST_INVALID, ``ValueError`` from the version-range parser; a valid name,
tag, digest or upload id never holds ``..``, ``/`` where it must not, NUL
or a backslash (they become path components). Run (fuzz/README.md)::

    python fuzz/reference.py -max_total_time=600
"""
import sys

import atheris

with atheris.instrument_imports(include=["registry_ext"]):
    from registry_ext.errors import ErrorCode, RegistryError
    from registry_ext.oci.digest import parse_digest
    from registry_ext.oci.reference import is_valid_upload_id, validate_name, validate_tag
    from registry_ext.oci.version_ranges import parse_range
    from registry_ext.oci.versions import member, member_tag, order_key

EXPECTED = {"name": ErrorCode.NAME_INVALID, "tag": ErrorCode.MANIFEST_INVALID, "digest": ErrorCode.DIGEST_INVALID}


def _path_safe(value: str, slash_ok: bool) -> bool:
    parts = value.split("/") if slash_ok else [value]
    return all(p not in ("", ".", "..") and "\\" not in p and "\x00" not in p and "/" not in p for p in parts)


def _checked(kind: str, parse, value: str, slash_ok: bool = False) -> None:
    try:
        parse(value)
    except RegistryError as err:
        if err.code is not EXPECTED[kind]:
            raise AssertionError(f"{kind}: unexpected code {err.code}") from err
        return
    if not _path_safe(value, slash_ok):
        raise AssertionError(f"{kind} {value!r} accepted but not safe as a path")


def test_one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    _checked("name", validate_name, text, slash_ok=True)
    _checked("tag", validate_tag, text)
    _checked("digest", parse_digest, text)
    if is_valid_upload_id(text) and not _path_safe(text, False):
        raise AssertionError(f"upload id {text!r}")
    key = order_key(text)
    if not all(0x21 <= ord(c) <= 0x7E for c in key) or member_tag(member(text)) != text:
        raise AssertionError(f"order key of {text!r}: {key!r}")
    try:
        parse_range(text).bounds()
    except ValueError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
