"""atheris harness: the extension listings' query parameters, parsed in a real Flask request context.

Builds the app once (its Redis client connects lazily, and parsing never
touches Redis), then feeds a fuzzed query string to the parsers the views
call first: ``tag_query`` (sort, order, n, last, cursor, filters) for both
the ``_regext`` and the index-shaped tags/list, ``query_int``, and the tag
history's ``before``/``since``/``cursor``/``digest``. Expected error:
``RegistryError`` with a 4xx status. Run (fuzz/README.md)::

    python fuzz/query.py -dict=fuzz/query.dict -max_total_time=600 /tmp/corpus fuzz/corpus/query
"""
import sys
import tempfile

import atheris
import flask  # noqa: F401  (third-party code is imported before, so only the registry is instrumented)
import redis  # noqa: F401

with atheris.instrument_imports(include=["registry_ext"]):
    from registry_ext import create_app
    from registry_ext.api.ext_params import INDEX_SORTS, SORTS, tag_query
    from registry_ext.api.http import query_int
    from registry_ext.config import load_settings
    from registry_ext.errors import RegistryError
    from registry_ext.services import history
    from registry_ext.storage import marker
    from registry_ext.storage.layout import Layout

ROOT = tempfile.mkdtemp(prefix="fuzz-query-")
marker.write(Layout(ROOT))  # an existing store: a new one would need Redis asked (services/root.py)
APP = create_app(load_settings(data={
    "storage": {"root": ROOT},
    "redis": {"url": "redis://127.0.0.1:1/0"},  # never contacted: parsing only
    "metrics": {"enabled": False}}, environ={}))


def _parse(query: str) -> None:
    with APP.test_request_context("/v2/fuzz/app/_regext/tags", query_string=query):
        from flask import request

        for sort, order, sorts in (("sort", "order", SORTS), ("sort_by", "sort_order", INDEX_SORTS)):
            _expected(lambda sort=sort, order=order, sorts=sorts: tag_query(sort, order, sorts, 100, 10000))
        _expected(lambda: query_int("n"))
        args = request.args
        _expected(lambda: history.parse_timestamp("before", args.get("before")))
        _expected(lambda: history._parse_cursor(args.get("cursor")))
        if args.get("digest"):
            _expected(lambda: history._parse_digest(args["digest"]))


def _expected(call) -> None:
    try:
        call()
    except RegistryError as err:
        if not 400 <= err.status < 500:
            raise AssertionError(f"status {err.status}") from err


def test_one_input(data: bytes) -> None:
    # PEP 3333: the raw query bytes reach the app as latin-1 text.
    _parse(data.decode("latin-1"))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
