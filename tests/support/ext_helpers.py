"""Helpers for the extension-listing tests: many tagged manifests, and following their pages."""
from __future__ import annotations

import itertools
import json

from tests.support.oci_client import OCI_CONFIG, OCI_MANIFEST, descriptor, push_blob, put_manifest_ok


_labels = itertools.count()


def push_tags(client, name: str, tags, config: bytes = b'{"os":"linux","architecture":"amd64"}') -> dict:
    """Push one distinct manifest per tag; return tag -> digest."""
    config_desc = descriptor(OCI_CONFIG, config)
    push_blob(client, name, config)
    out = {}
    for tag in tags:
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [],
                           "annotations": {"n": str(next(_labels))}}).encode()
        out[tag] = put_manifest_ok(client, name, tag, body)
    return out


def walk(client, url: str, key: str = "tags") -> tuple[list, int]:
    """Follow Link headers to the end; return every item and the number of pages."""
    items, pages = [], 0
    while url:
        resp = client.get(url)
        assert resp.status_code == 200, resp.get_data()
        items += resp.json[key]
        pages += 1
        link = resp.headers.get("Link")
        url = link[1:link.index(">")] if link else None
        assert pages < 1000
    return items, pages
