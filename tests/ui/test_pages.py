"""The web UI's pages through the Flask client: what each shows, escaping, headers and bad input."""
from __future__ import annotations

import html
import re

from markupsafe import escape

from tests.support.oci_client import (OCI_CONFIG, OCI_LAYER_GZIP, descriptor, go_json, image_manifest, make_image,
                                      push_blob, put_manifest_ok)

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def page(client, url: str, status: int = 200) -> str:
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    assert resp.content_type == "text/html; charset=utf-8"
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'self'; script-src 'self'")
    return resp.get_data(as_text=True)


def push_signed(client, name: str, tag: str, annotation: str) -> dict:
    """An image tagged ``tag`` with a signature-like referrer whose annotation is ``annotation``."""
    image = make_image(client, name, tag=tag, annotations={"org.example.note": annotation})
    empty = b"{}"
    push_blob(client, name, empty)
    sig = image_manifest(descriptor("application/vnd.oci.empty.v1+json", empty), [],
                         artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
                         subject={"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": image["manifest"], "size": image["size"]},
                         annotations={"org.example.signer": annotation})
    image["referrer"] = put_manifest_ok(client, name, "sha256:" + __import__("hashlib").sha256(sig).hexdigest(), sig)
    return image


def test_repository_list_search_and_counts(client):
    make_image(client, "library/nginx", tag="1.25.0")
    make_image(client, "library/nginx", tag="1.25.0-alpine")
    make_image(client, "library/redis", tag="7.2")
    make_image(client, "tools/lint", tag="1")
    body = page(client, "/ui/")
    assert re.search(r'library/nginx</a></td>\s*<td class="num">2</td>', body)
    assert re.search(r'tools/lint</a></td>\s*<td class="num">1</td>', body)
    assert "<time datetime=" in body
    prefixed = page(client, "/ui/?q=library/")
    assert "library/nginx" in prefixed and "library/redis" in prefixed and "tools/lint" not in prefixed
    globbed = page(client, "/ui/?q=*/re*")
    assert "library/redis" in globbed and "library/nginx" not in globbed and "tools/lint" not in globbed
    assert "No repository matches" in page(client, "/ui/?q=nothing")


def test_repository_list_pages(client, monkeypatch):
    monkeypatch.setattr("registry_ext.services.browse.REPOS_PER_PAGE", 2)
    for name in ("a/one", "a/two", "a/three"):
        make_image(client, name, tag="1")
    first = page(client, "/ui/")
    assert "a/one" in first and "a/three" in first and "a/two" not in first
    link = html.unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    second = page(client, link)
    assert "a/two" in second and "a/one" not in second and 'rel="next"' not in second


def test_repository_page_groups_families_and_answers_newer(client):
    for tag in ("1.24.0", "1.25.0", "1.25.0-alpine", "1.26.0-alpine", "latest"):
        make_image(client, "library/nginx", tag=tag)
    body = page(client, "/ui/repo/library/nginx?sort=semver")
    captions = re.findall(r"<caption>([^<]+)</caption>", body)
    # newest version first: non-versions sort above versions (oci/versions.py), then 1.26.0-alpine
    assert captions == ["other tags", "alpine", "plain versions"]
    versions = re.findall(r'_tag/([^"]+)">', body)
    assert versions.index("1.26.0-alpine") < versions.index("1.25.0-alpine")
    assert versions.index("1.25.0") < versions.index("1.24.0")
    newer = page(client, "/ui/repo/library/nginx?sort=semver&running=1.24.0")
    box = newer.split('class="newer"')[1].split("</ul>")[0]
    assert re.findall(r'_tag/([^"]+)">', box) == ["1.25.0"]
    assert "Nothing newer than <code>1.26.0-alpine</code>" in page(
        client, "/ui/repo/library/nginx?running=1.26.0-alpine")


def test_repository_page_by_time_pages_and_lists_untagged(client, monkeypatch):
    monkeypatch.setattr("registry_ext.services.browse.TAGS_PER_PAGE", 2)
    for tag in ("a", "b", "c"):
        make_image(client, "app", tag=tag)
    untagged = make_image(client, "app", tag=None)
    first = page(client, "/ui/repo/app")
    assert re.findall(r'_tag/([^"]+)">', first) == ["c", "b"]
    assert untagged["manifest"] in first.split('id="untagged-h"')[1]
    link = html.unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))
    second = page(client, link)
    assert re.findall(r'_tag/([^"]+)">', second) == ["a"] and 'id="untagged-h"' not in second


def test_tag_page_shows_timeline_manifest_and_pull_commands(client):
    first = make_image(client, "library/nginx", tag="stable")
    second = make_image(client, "library/nginx", tag="stable")
    body = page(client, "/ui/repo/library/nginx/_tag/stable")
    events = re.findall(r"<strong>(\w+)</strong>", body.split('id="history-h"')[1].split("</section>")[0])
    assert events == ["moved", "created"]
    assert f"from <code class=\"digest\">{first['manifest'][:19]}…</code> to <code class=\"digest\">" \
           f"{second['manifest'][:19]}…</code>" in body
    assert 'value="docker pull localhost/library/nginx:stable"' in body
    assert 'value="podman pull --tls-verify=false localhost/library/nginx:stable"' in body
    assert 'value="ctr image pull --plain-http localhost/library/nginx:stable"' in body
    assert f'value="docker pull localhost/library/nginx@{second["manifest"]}"' in body
    assert "&#34;schemaVersion&#34;: 2" in body and "&#34;architecture&#34;: &#34;amd64&#34;" in body


def test_annotations_are_escaped_everywhere(client):
    image = push_signed(client, "app", "v1", XSS)
    body = page(client, "/ui/repo/app/_tag/v1")
    assert "<script>alert" not in body and "<img src=x" not in body
    assert str(escape(XSS)) in body  # the referrer's annotation, as text
    assert image["referrer"] in body
    manifest_json = body.split('aria-label="Manifest JSON">')[1].split("</pre>")[0]
    assert "onerror=alert(1)&gt;" in manifest_json and "<" not in manifest_json


def test_tag_names_and_query_values_are_escaped(client):
    make_image(client, "app", tag="v1")
    search = page(client, "/ui/?q=%3Cscript%3Ealert(1)%3C/script%3E")  # a prefix nothing starts with
    assert "<script>alert" not in search and "No repository matches <code>&lt;script&gt;alert(1)" in search
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in search
    glob = page(client, "/ui/?q=%3Cb%3E*", 400)  # a glob may hold only the name grammar's characters
    assert "<b>" not in glob and "search:" in glob
    running = page(client, "/ui/repo/app?running=%3Cscript%3Ealert(1)%3C/script%3E", 400)
    assert "<script>alert" not in running and "not a valid tag" in running
    tag_url = page(client, "/ui/repo/app/_tag/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404)
    assert "<script>alert" not in tag_url


def test_unknown_things_are_404_pages(client):
    make_image(client, "app", tag="v1")
    assert "NAME_UNKNOWN" in page(client, "/ui/repo/nothing", 404)
    assert "MANIFEST_UNKNOWN" in page(client, "/ui/repo/app/_tag/v2", 404)
    assert "malformed" in page(client, "/ui/repo/app?cursor=garbage", 400)
    assert "sort must be" in page(client, "/ui/repo/app?sort=size", 400)
    assert "search is too long" in page(client, "/ui/?q=" + "a" * 300, 400)


def test_big_config_is_not_shown(client):
    config = go_json({"architecture": "amd64", "os": "linux", "padding": "x" * 300_000,
                      "rootfs": {"type": "layers", "diff_ids": []}})
    push_blob(client, "app", config)
    layer = push_blob(client, "app", b"layer")
    assert layer
    put_manifest_ok(client, "app", "big", image_manifest(descriptor(OCI_CONFIG, config),
                                                         [descriptor(OCI_LAYER_GZIP, b"layer")]))
    body = page(client, "/ui/repo/app/_tag/big")
    assert "Image config JSON" not in body and "is not shown" in body and "padding" not in body


def test_static_files_and_no_login_without_users(client):
    css = client.get("/ui/static/ui.css")
    assert css.status_code == 200 and b"--fg" in css.get_data()
    assert "no users" in page(client, "/ui/login", 404)


def test_untagged_manifests_are_looked_for_within_a_budget(client, monkeypatch):
    monkeypatch.setattr("registry_ext.services.browse.UNTAGGED_SCAN", 64)  # one batch of the manifest scan
    old = make_image(client, "app", tag=None)
    config, layer = push_blob(client, "app", b"{}"), push_blob(client, "app", b"layer")
    assert config and layer
    for i in range(70):
        put_manifest_ok(client, "app", f"t{i}", image_manifest(
            descriptor(OCI_CONFIG, b"{}"), [descriptor(OCI_LAYER_GZIP, b"layer")], annotations={"i": str(i)}))
    first = page(client, "/ui/repo/app")  # the 64 newest manifests are tagged: none found yet, a link on
    assert old["manifest"] not in first and "None among the newest manifests looked at." in first
    link = html.unescape(re.search(r'href="(/ui/repo/app/_untagged\?cursor=[^"]+)"', first).group(1))
    further = page(client, link)
    assert old["manifest"] in further and "Look further" not in further
