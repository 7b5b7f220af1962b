"""Retention through a real registry (Flask app, real redis-server): plan() says what and why, apply()
deletes it through the manifest service (history, index and feed as a DELETE would leave them), and what
changed since the plan is skipped. The CLI prints the plan before deleting."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from registry_ext.app import create_app
from registry_ext.cli import main
from registry_ext.config import replace
from registry_ext.services.retention import apply, plan, report_lines
from registry_ext.tag_rules import parse_retention
from tests.support.flask_client import BufferedClient
from tests.support.oci_client import (
    EMPTY_DIGEST, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, go_json, image_manifest, make_image, push_blob,
    push_manifest, put_manifest_ok, sha256_digest, tag_list,
)

NAME = "apps/web"
DAY = 86_400_000


@pytest.fixture
def app(settings):
    return create_app(replace(settings, "immutable_tags", rules=[{"tags": r"^v[0-9]+\.[0-9]+\.[0-9]+$"}]))


@pytest.fixture
def client(app):
    app.test_client_class = BufferedClient
    return app.test_client()


def registry(app):
    return app.extensions["registry"]


def run(app, table: dict, now: int):
    planned = plan(registry(app), parse_retention([table]), now=now)
    return planned, apply(registry(app), planned)


def deleted(planned) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(d.kind, d.target): d.reasons for d in planned.deletions}


def push_index(client, children: list[dict], tag: str | None) -> str:
    body = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": c["manifest"], "size": c["size"]} for c in children]})
    return put_manifest_ok(client, NAME, tag or sha256_digest(body), body, OCI_INDEX)


def push_referrer(client, subject: dict) -> str:
    push_blob(client, NAME, b"{}")
    body = image_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}, [],
                          subject={"mediaType": OCI_MANIFEST, "digest": subject["manifest"], "size": subject["size"]},
                          artifact_type="application/spdx+json")
    return put_manifest_ok(client, NAME, sha256_digest(body), body)


def test_keep_newest_per_family_and_keep_tags(app, client, clock):
    for i, tag in enumerate(("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.2.0-alpine", "1.3.0-alpine", "latest", "edge")):
        make_image(client, NAME, tag=tag, layers=(f"l{i}".encode(),))
    planned, outcome = run(app, {"keep_newest": 2, "keep_tags": "^edge$"}, clock["now"])
    assert deleted(planned) == {
        ("tag", "1.1.0"): ("not among the 2 newest of family N.N.N (number 3)",),
        ("tag", "1.0.0"): ("not among the 2 newest of family N.N.N (number 4)",)}
    assert not outcome.skipped and len(outcome.deleted) == 2
    assert tag_list(client, NAME) == ["1.2.0", "1.2.0-alpine", "1.3.0", "1.3.0-alpine", "edge", "latest"]
    history = client.get(f"/v2/{NAME}/_oci/tag-history/1.0.0").json["manifests"]
    assert history[0]["annotations"]["org.opencontainers.distribution.tag.event"] == "deleted"
    assert plan(registry(app), parse_retention([{"keep_newest": 2}]), now=clock["now"]).deletions == ()


def test_unpulled_tags_go_pulled_or_recently_moved_ones_stay(app, client, clock):
    for i, tag in enumerate(("1.0", "2.0", "3.0", "4.0")):
        make_image(client, NAME, tag=tag, layers=(f"p{i}".encode(),))
    clock["now"] += 100 * DAY
    client.get(f"/v2/{NAME}/manifests/2.0")
    client.head(f"/v2/{NAME}/manifests/3.0")  # a HEAD is not a pull
    moved = make_image(client, NAME, tag=None, layers=(b"moved",))
    assert push_manifest(client, NAME, "4.0", moved["body"]).status_code == 201
    planned, _outcome = run(app, {"unpulled_for": "30d"}, clock["now"] + 10 * DAY)
    assert sorted(target for _kind, target in deleted(planned)) == ["1.0", "3.0"]
    reason = deleted(planned)[("tag", "1.0")][0]
    assert reason.startswith("not pulled for 30d (last pull never, last moved 2023-11-14T22:13:")
    assert tag_list(client, NAME) == ["2.0", "4.0"]


def test_untagged_manifests_go_unless_something_kept_needs_them(app, client, clock):
    kept_children = [make_image(client, NAME, tag=None, layers=(f"k{i}".encode(),)) for i in range(2)]
    push_index(client, kept_children, "1.0")
    old_children = [make_image(client, NAME, tag=None, layers=(f"o{i}".encode(),)) for i in range(2)]
    old_index = push_index(client, old_children, None)
    cache = make_image(client, NAME, tag=None, layers=(b"cache",))
    image = make_image(client, NAME, tag="2.0", layers=(b"img",))
    sbom = push_referrer(client, image)
    young_parent_child = make_image(client, NAME, tag=None, layers=(b"child",))
    clock["now"] += 30 * DAY
    push_index(client, [young_parent_child], None)
    pushed = {m["digest"]: m["pushed"] for m in client.get(f"/v2/{NAME}/_regext/manifests").json["manifests"]}
    planned, outcome = run(app, {"untagged_older_than": "14d"}, clock["now"])
    order = [d.target for d in planned.deletions]
    assert set(order) == {old_index, old_children[0]["manifest"], old_children[1]["manifest"], cache["manifest"]}
    assert order.index(old_index) < min(order.index(c["manifest"]) for c in old_children)
    assert not outcome.skipped
    untagged = {m["digest"] for m in client.get(f"/v2/{NAME}/_regext/manifests?tagged=false").json["manifests"]}
    assert {c["manifest"] for c in kept_children} | {sbom, young_parent_child["manifest"]} <= untagged
    assert not untagged & set(order)
    manifest = next(d for d in planned.deletions if d.target == cache["manifest"])
    assert manifest.size == cache["size"] and manifest.content > 0
    assert manifest.reasons == (f"untagged, pushed {pushed[cache['manifest']]}, before 14d ago",)


def test_a_manifest_whose_tags_the_plan_deletes_goes_with_them(app, client, clock):
    old = make_image(client, NAME, tag="1.0", layers=(b"a",))
    make_image(client, NAME, tag="2.0", layers=(b"b",))
    clock["now"] += 30 * DAY
    planned, outcome = run(app, {"keep_newest": 1, "untagged_older_than": "14d"}, clock["now"])
    assert [(d.kind, d.target) for d in planned.deletions] == [("tag", "1.0"), ("manifest", old["manifest"])]
    assert planned.deletions[1].reasons[0].startswith("untagged once this plan deletes its tags")
    assert len(outcome.deleted) == 2
    assert client.get(f"/v2/{NAME}/manifests/{old['manifest']}").status_code == 404


def test_immutable_tags_are_never_deleted(app, client, clock):
    for i, tag in enumerate(("v1.0.0", "v1.1.0", "v1.2.0", "1.0.0", "1.1.0")):
        make_image(client, NAME, tag=tag, layers=(f"i{i}".encode(),))
    planned, _outcome = run(app, {"keep_newest": 1}, clock["now"])
    assert sorted(target for _kind, target in deleted(planned)) == ["1.0.0"]
    assert "v1.0.0" in tag_list(client, NAME)


def test_what_changed_since_the_plan_is_skipped(app, client, clock):
    make_image(client, NAME, tag="1.0", layers=(b"a",))
    make_image(client, NAME, tag="2.0", layers=(b"b",))
    cache = make_image(client, NAME, tag=None, layers=(b"c",))
    clock["now"] += 30 * DAY
    planned = plan(registry(app), parse_retention([{"keep_newest": 1, "untagged_older_than": "1d"}]),
                   now=clock["now"])
    assert {(d.kind, d.target) for d in planned.deletions} >= {("tag", "1.0"), ("manifest", cache["manifest"])}
    newer = make_image(client, NAME, tag=None, layers=(b"n",))
    assert push_manifest(client, NAME, "1.0", newer["body"]).status_code == 201  # 1.0 moved
    assert push_manifest(client, NAME, "cache", cache["body"]).status_code == 201  # the cache tagged
    outcome = apply(registry(app), planned)
    skipped = {item.target: why for item, why in outcome.skipped}
    assert skipped["1.0"] == "DENIED: tag was moved since the deletion was planned"
    assert skipped[cache["manifest"]] == "DENIED: manifest was tagged since the deletion was planned"
    assert tag_list(client, NAME) == ["1.0", "2.0", "cache"]
    assert client.head(f"/v2/{NAME}/manifests/1.0").headers["Docker-Content-Digest"] == newer["manifest"]


def test_the_command_prints_the_plan_and_dry_run_deletes_nothing(app, client, settings, tmp_path):
    make_image(client, NAME, tag="1.0", layers=(b"a",))
    make_image(client, NAME, tag="2.0", layers=(b"b",))
    config = tmp_path / "registry.toml"
    config.write_text('[[retention.rules]]\nrepositories = ["apps/**"]\nkeep_newest = 1\n')
    args = ["retention", "--config", str(config), "--data-dir", settings.storage.root,
            "--redis-url", settings.redis.url, "--key-prefix", settings.redis.key_prefix]
    dry = CliRunner().invoke(main, [*args, "--dry-run"], env={"REGISTRY_EXT_CONFIG": None})
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[0].endswith("1 repositories under a rule; delete 1 tags and 0 manifests (0 B of manifests "
                             "referencing 0 B of blobs); keep 1 tags and 2 manifests")
    assert lines[1].startswith("delete tag      apps/web:1.0 -> sha256:")
    assert lines[1].endswith("rule 1: not among the 1 newest of family N.N (number 2)")
    assert tag_list(client, NAME) == ["1.0", "2.0"]
    real = CliRunner().invoke(main, args, env={"REGISTRY_EXT_CONFIG": None})
    assert real.exit_code == 0, real.output
    assert real.output.splitlines()[1:] == [lines[1], "deleted 1, skipped 0"]
    assert tag_list(client, NAME) == ["2.0"]
    assert report_lines(plan(registry(app), parse_retention([{"keep_newest": 1}])))[1:] == []


def test_the_command_without_rules_or_with_deletes_disabled_refuses(settings, tmp_path):
    base = ["retention", "--data-dir", settings.storage.root, "--redis-url", settings.redis.url]
    result = CliRunner().invoke(main, base, env={"REGISTRY_EXT_CONFIG": None})
    assert result.exit_code == 2
    assert "no retention.rules in the configuration" in result.output
    config = tmp_path / "r.toml"
    config.write_text('[storage]\ndelete_enabled = false\n[[retention.rules]]\nkeep_newest = 1\n')
    result = CliRunner().invoke(main, [*base, "--config", str(config)], env={"REGISTRY_EXT_CONFIG": None})
    assert result.exit_code == 2
    assert "storage.delete_enabled is false; enable deletes or use --dry-run" in result.output
