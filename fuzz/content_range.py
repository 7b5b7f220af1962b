"""atheris harness: upload ``Content-Range`` and download ``Range`` headers.

Expected error: ``RangeError``. An accepted Content-Range has a start >= 0
and a length >= 1; an accepted Range lies inside the blob. Run
(fuzz/README.md)::

    python fuzz/content_range.py -dict=fuzz/content_range.dict -max_total_time=600 /tmp/corpus \
        fuzz/corpus/content_range
"""
import sys

import atheris

atheris.enabled_hooks.add("RegEx")  # let libFuzzer see what the header regexes compare against
with atheris.instrument_imports(include=["registry_ext"]):
    from registry_ext.oci.ranges import RangeError, parse_content_range, parse_range


SIZES = [0, 1, 2, 10, 100, 1 << 20, 1 << 40, (1 << 63) - 1]


def test_one_input(data: bytes) -> None:
    # The first byte picks the blob size; the rest is the header as a WSGI server passes it (latin-1).
    size = SIZES[data[0] % len(SIZES)] if data else 0
    header = data[1:].decode("latin-1")
    try:
        start, length = parse_content_range(header)
        if start < 0 or length < 1:
            raise AssertionError(f"{header!r} -> {start}, {length}")
    except RangeError:
        pass
    try:
        wanted = parse_range(header, size)
    except RangeError:
        return
    if wanted is not None and not 0 <= wanted[0] <= wanted[1] < size:
        raise AssertionError(f"{header!r} on {size} bytes -> {wanted}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
