"""The storage layout, pinned (in the style of distribution's registry/storage/paths_test.go).

Every path the filesystem store uses, for sample names, exactly. A change
here changes what is on every existing disk: it needs a new layout version
in the marker (storage/layout.py LAYOUT_VERSION) and a migration, not an
edit of this table. The second test pins the same paths as a push through
the API actually leaves them on disk.
"""
from __future__ import annotations

import os

from registry_ext.oci.digest import parse_digest
from registry_ext.storage.layout import LAYOUT_VERSION, Layout
from tests.support.oci_client import make_image, open_session

ROOT = "/srv/reg"
SHA256 = parse_digest("sha256:" + "ab" * 32)
SHA512 = parse_digest("sha512:" + "0f" * 64)
UPLOAD = "0123456789abcdef0123456789abcdef"


def rel(path) -> str:
    return os.path.relpath(path, ROOT)


def test_every_path_for_sample_names():
    layout = Layout(ROOT)
    cases = [
        (layout.marker, "registry-ext.json"),
        (layout.identity, "identity"),
        (layout.fill_temp(SHA256, UPLOAD), f"fills/sha256-{'ab' * 32}.{UPLOAD}"),
        (layout.blob(SHA256), "blobs/sha256/ab/" + "ab" * 32),
        (layout.blob(SHA512), "blobs/sha512/0f/" + "0f" * 64),
        (layout.upload_data(UPLOAD), f"uploads/{UPLOAD}/data"),
        (layout.upload_info(UPLOAD), f"uploads/{UPLOAD}/info.json"),
        (layout.blob_link("library/ubuntu", SHA256), "repos/library/ubuntu/_blobs/sha256/" + "ab" * 32),
        (layout.blob_link("a", SHA512), "repos/a/_blobs/sha512/" + "0f" * 64),
        (layout.manifest_link("foo/bar/baz", SHA256), "repos/foo/bar/baz/_manifests/sha256/" + "ab" * 32),
        (layout.tag("library/ubuntu", "22.04"), "repos/library/ubuntu/_tags/22.04"),
        (layout.tag("a", "_Latest-1.x"), "repos/a/_tags/_Latest-1.x"),
        (layout.history_segment("library/ubuntu", "22.04", 0), "repos/library/ubuntu/_history/22.04"),
        (layout.history_segment("library/ubuntu", "22.04", 1), "repos/library/ubuntu/_history/22.04~1"),
        (layout.history_segment("a", "v1", 1234), "repos/a/_history/v1~1234"),
        (layout.lock("library/ubuntu"), "repos/library/ubuntu/_lock"),
        (layout.journal_entry("4f0c2d9e7a1b4c35a8e2d61f0b7c9a13"), "journal/4f0c2d9e7a1b4c35a8e2d61f0b7c9a13.json"),
        (layout.tmp, "tmp"),
        (layout.quarantine, "gc"),
    ]
    assert [rel(path) for path, _ in cases] == [expected for _, expected in cases]
    assert LAYOUT_VERSION == 1


def test_a_push_leaves_exactly_these_files(client, app):
    """What one repository with a tag moved once and an open upload session holds on disk."""
    root = app.extensions["registry"].storage.layout.root
    first = make_image(client, "team/app", tag="v1")
    second = make_image(client, "team/app", layers=(b"other",), tag="v1")
    session = open_session(client, "team/app").rsplit("/", 1)[1]

    def blob(digest):
        hexa = digest.split(":")[1]
        return f"blobs/sha256/{hexa[:2]}/{hexa}"

    digests = [first["config"], *first["layers"], first["manifest"],
               second["config"], *second["layers"], second["manifest"]]
    expected = {"registry-ext.json", "identity", f"uploads/{session}/data", f"uploads/{session}/info.json",
                "repos/team/app/_lock", "repos/team/app/_tags/v1", "repos/team/app/_history/v1"}
    expected |= {blob(d) for d in digests}
    expected |= {f"repos/team/app/_blobs/sha256/{d.split(':')[1]}" for d in digests
                 if d not in (first["manifest"], second["manifest"])}
    expected |= {f"repos/team/app/_manifests/sha256/{d.split(':')[1]}" for d in (first["manifest"], second["manifest"])}
    found = {os.path.relpath(os.path.join(folder, name), root)
             for folder, _dirs, files in os.walk(root) for name in files}
    assert found == expected
