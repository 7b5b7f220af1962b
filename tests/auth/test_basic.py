"""HTTP Basic on every request: rules per repository, anonymous pull, 401/403, catalog, mounts, audit."""
from __future__ import annotations

import pytest

from tests.support.auth_helpers import (APACHE_PASSWORD, audit_lines, basic, challenge, client_for, make_app)
from tests.support.oci_client import (assert_error, body_json, location, make_image, push_blob, sha256_digest,
                              start_upload)


@pytest.fixture
def app(settings, tmp_path):
    return make_app(settings, tmp_path)


@pytest.fixture
def alice(app):
    return client_for(app, basic("alice"))


def test_base_needs_credentials_and_answers_200_with_them(app):
    resp = client_for(app).get("/v2/")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp) == 'Basic realm="registry-ext", charset="UTF-8"'
    assert client_for(app, basic("alice")).get("/v2/").status_code == 200
    assert_error(client_for(app, basic("alice", "wrong")).get("/v2/"), 401, "UNAUTHORIZED")
    assert client_for(app, f"Basic {basic('carol', APACHE_PASSWORD)[6:]}").get("/v2/").status_code == 200


def test_head_gets_the_same_status_with_an_empty_body(app, alice):
    make_image(alice, "private/app")
    resp = client_for(app).head("/v2/private/app/manifests/latest")
    assert resp.status_code == 401 and resp.get_data() == b""
    assert challenge(resp).startswith("Basic ")
    resp = client_for(app, basic("robot")).head("/v2/private/app/manifests/latest")
    assert resp.status_code == 403 and resp.get_data() == b""


def test_anonymous_pull_where_a_rule_allows_it(app, alice):
    image = make_image(alice, "public/tools")
    anonymous = client_for(app)
    resp = anonymous.get("/v2/public/tools/manifests/latest")
    assert resp.status_code == 200 and resp.get_data() == image["body"]
    assert anonymous.get(f"/v2/public/tools/blobs/{image['layers'][0]}").status_code == 200
    assert body_json(anonymous.get("/v2/public/tools/tags/list"))["tags"] == ["latest"]
    resp = anonymous.put("/v2/public/tools/manifests/v2", data=image["body"],
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    doc = assert_error(resp, 401, "UNAUTHORIZED")
    assert doc["errors"][0]["detail"] == [{"Type": "repository", "Name": "public/tools", "Action": "pull"},
                                         {"Type": "repository", "Name": "public/tools", "Action": "push"}]
    assert_error(anonymous.delete(f"/v2/public/tools/manifests/{image['manifest']}"), 401, "UNAUTHORIZED")


def test_a_robot_pushes_only_its_repository(app, alice):
    robot = client_for(app, basic("robot"))
    image = make_image(robot, "ci/app")
    assert robot.get("/v2/ci/app/manifests/latest").status_code == 200
    assert_error(start_upload(robot, "ci/other"), 403, "DENIED")
    assert_error(robot.delete(f"/v2/ci/app/manifests/{image['manifest']}"), 403, "DENIED")
    make_image(alice, "team/app")
    assert_error(robot.get("/v2/team/app/tags/list"), 403, "DENIED")


def test_groups_and_an_empty_rule_that_denies(app, alice):
    bob = client_for(app, basic("bob"))
    image = make_image(bob, "secret/keys")
    assert_error(alice.get("/v2/secret/keys/manifests/latest"), 403, "DENIED")  # `* -> []` before `alice -> *`
    assert alice.get("/v2/other/thing/tags/list").status_code == 404  # allowed, just absent
    assert bob.delete(f"/v2/secret/keys/manifests/{image['manifest']}").status_code == 202
    assert_error(bob.get("/v2/other/thing/tags/list"), 403, "DENIED")


def test_catalog_lists_what_the_caller_may_pull(app, alice):
    for name in ("public/a", "ci/app", "team/x", "team/y"):
        make_image(alice, name)
    make_image(client_for(app, basic("bob")), "secret/s")

    def names(client, query=""):
        resp = client.get("/v2/_catalog" + query)
        assert resp.status_code == 200, resp.get_data()
        return body_json(resp)["repositories"]

    assert names(client_for(app, basic("admin"))) == ["ci/app", "public/a", "secret/s", "team/x", "team/y"]
    assert names(alice) == ["ci/app", "public/a", "team/x", "team/y"]
    assert names(client_for(app, basic("robot"))) == ["ci/app", "public/a"]
    assert names(client_for(app, basic("bob"))) == ["public/a", "secret/s"]
    assert names(client_for(app)) == ["public/a"]
    resp = alice.get("/v2/_catalog?n=2")
    assert body_json(resp)["repositories"] == ["ci/app", "public/a"]
    assert resp.headers["Link"] == '</v2/_catalog?n=2&last=public%2Fa>; rel="next"'
    resp = alice.get("/v2/_catalog?n=2&last=public/a")
    assert body_json(resp)["repositories"] == ["team/x", "team/y"] and "Link" not in resp.headers


def test_filtered_catalog_stops_after_scan_max_with_a_link(settings, tmp_path):
    from registry_ext.config import replace

    app = make_app(replace(settings, "limits", scan_max=3), tmp_path)
    alice = client_for(app, basic("alice"))
    for name in ("a/1", "a/2", "a/3", "a/4", "public/z"):
        push_blob(alice, name, name.encode())
    anonymous = client_for(app)
    resp = anonymous.get("/v2/_catalog?n=10")
    assert body_json(resp)["repositories"] == [] and resp.headers["Link"] == \
        '</v2/_catalog?n=10&last=a%2F3>; rel="next"'
    resp = anonymous.get("/v2/_catalog?n=10&last=a/3")
    assert body_json(resp)["repositories"] == ["public/z"] and "Link" not in resp.headers


def test_catalog_without_credentials_is_401_when_anonymous_may_pull_nothing(settings, tmp_path):
    app = make_app(settings, tmp_path, rules=[{"repository": "**", "who": ["*"], "actions": ["pull"]}])
    resp = client_for(app).get("/v2/_catalog")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert client_for(app, basic("robot")).get("/v2/_catalog").status_code == 200


def test_mount_needs_pull_on_the_source_else_a_plain_upload(app, alice):
    bob = client_for(app, basic("bob"))
    secret_blob = push_blob(bob, "secret/src", b"secret layer")
    public_blob = push_blob(alice, "public/src", b"public layer")
    robot = client_for(app, basic("robot"))
    resp = start_upload(robot, "ci/app", mount=secret_blob, **{"from": "secret/src"})
    assert resp.status_code == 202 and "/blobs/uploads/" in location(resp)  # fell back: no mount
    assert robot.head(f"/v2/ci/app/blobs/{secret_blob}").status_code == 404
    resp = start_upload(robot, "ci/app", mount=public_blob, **{"from": "public/src"})
    assert resp.status_code == 201 and resp.headers["Docker-Content-Digest"] == public_blob


def test_extension_endpoints_need_pull(app, alice):
    image = make_image(alice, "team/ext")
    robot = client_for(app, basic("robot"))
    for path in ("_regext/tags", "_regext/manifests", "_regext/orphans", "_regext/tags/latest/newer",
                 f"_regext/digests/{image['manifest']}/tags", "_oci/tag-history/latest", "_oci/ext/discover",
                 f"referrers/{image['manifest']}"):
        assert_error(robot.get(f"/v2/team/ext/{path}"), 403, "DENIED")
        assert alice.get(f"/v2/team/ext/{path}").status_code == 200, path
    assert_error(client_for(app).get("/v2/_oci/ext/discover"), 401, "UNAUTHORIZED")
    assert robot.get("/v2/_oci/ext/discover").status_code == 200


def test_metrics_and_readyz_can_be_restricted(settings, tmp_path):
    app = make_app(settings, tmp_path, metrics=["admin"], readyz=["*"])
    assert client_for(app).get("/healthz").status_code == 200
    resp = client_for(app).get("/metrics")
    assert_error(resp, 401, "UNAUTHORIZED")
    assert challenge(resp).startswith("Basic ")
    assert_error(client_for(app, basic("alice")).get("/metrics"), 403, "DENIED")
    assert client_for(app, basic("admin")).get("/metrics").status_code == 200
    assert_error(client_for(app).get("/readyz"), 401, "UNAUTHORIZED")
    assert client_for(app, basic("robot")).get("/readyz").status_code == 200
    open_app = make_app(settings, tmp_path)  # defaults: both open (nginx restricts /metrics by address)
    assert client_for(open_app).get("/metrics").status_code == 200
    assert client_for(open_app).get("/readyz").status_code == 200


def test_audit_lines_for_writes_and_denials(app, alice, tmp_path):
    digest = push_blob(alice, "team/audit", b"audited")
    client_for(app, basic("robot")).delete(f"/v2/team/audit/blobs/{digest}")
    client_for(app, basic("alice", "not-her-password")).get("/v2/team/audit/tags/list")
    lines = audit_lines(tmp_path)
    finish = [line for line in lines if line["method"] == "PUT"][-1]
    assert {k: finish[k] for k in ("event", "user", "scheme", "client", "action", "repository", "digest",
                                   "status", "result")} == {
        "event": "write", "user": "alice", "scheme": "basic", "client": "127.0.0.1", "action": "push",
        "repository": "team/audit", "digest": digest, "status": 201, "result": "ok"}
    denied = [line for line in lines if line["event"] == "denied"]
    assert [(d["user"], d["method"], d["action"], d["status"]) for d in denied] == [
        ("robot", "DELETE", "delete", 403), (None, "GET", "pull", 401)]
    assert denied[0]["digest"] == digest and denied[0]["repository"] == "team/audit"
    assert denied[1]["reason"] == "wrong user name or password"
    text = (tmp_path / "audit.log").read_text()
    assert "not-her-password" not in text and "alice-pw" not in text


def test_writes_that_fail_are_audited_as_failed(app, alice, tmp_path):
    resp = alice.put("/v2/team/x/manifests/v1", data=b"{not json",
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert resp.status_code == 400
    line = audit_lines(tmp_path)[-1]
    assert (line["event"], line["result"], line["status"], line["reference"]) == ("write", "failed", 400, "v1")
    assert sha256_digest(b"{not json") not in str(line)
