"""Retention rules (services/retention.py) on the real tag history of the official images.

Each image's history is replayed into the state a registry would hold at the end (tag -> digest of its
target, the time each tag last moved, one manifest per target first pushed when first seen, seeded pulls),
and random rules (hypothesis) are planned over it. Properties: retention never deletes a tag a keep
keeps (immutable, keep_tags, keep_range, the keep_newest highest of its family by the version order,
pulled or moved within unpulled_for); it deletes every other tag when the rule deletes tags; a manifest
it deletes has no tag left and was pushed before the cutoff, and is never a tag's manifest that stays.

The data set is looked for at ``REGISTRY_EXT_DATASET``, then in ``shared/data/`` beside the repository or
beside its parent folder (a worktree); without it these tests are skipped, naming the paths looked at.
"""
from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import random
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_ext.index.reader import RepoSnapshot
from registry_ext.oci.versions import parse_tag
from registry_ext.services.retention import plan_repository
from registry_ext.tag_rules import parse_immutable, parse_retention
from tests.support.versions import sort_tags

REPOSITORY = Path(__file__).resolve().parents[2]
NAME = "data"
CANDIDATES = [Path(p) for p in (os.environ.get("REGISTRY_EXT_DATASET"),) if p] + [
    folder / "shared" / "data" / "official-images-tag-history.jsonl.gz"
    for folder in (REPOSITORY.parent, REPOSITORY.parent.parent)]
DAY = 86_400_000


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def digest(target: str) -> str:
    return "sha256:" + hashlib.sha256(target.encode()).hexdigest()


@pytest.fixture(scope="module")
def snapshots() -> dict[str, tuple[RepoSnapshot, int]]:
    """image -> (its final state as a snapshot, the time of its last event)."""
    path = next((p for p in CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip(f"the official images' tag history is at none of {[str(p) for p in CANDIDATES]}")
    rows: dict[str, list[dict]] = collections.defaultdict(list)
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            rows[row["image"]].append(row)
    rng = random.Random(16)
    out = {}
    for image, events in rows.items():
        tags: dict[str, str] = {}
        updated: dict[str, int] = {}
        manifests: dict[str, dict] = {}
        for row in events:
            at = ms(row["time"])
            if row["event"] == "deleted":
                tags.pop(row["tag"], None)
                continue
            d = digest(row["target"])
            manifests.setdefault(d, {"pushedAt": at, "size": 500})
            tags[row["tag"]] = d
            updated[row["tag"]] = at
        end = ms(events[-1]["time"])
        pulled = {f"t:{t}": end - rng.randrange(400) * DAY for t in tags if rng.random() < 0.4}
        out[image] = (RepoSnapshot(tags, {t: updated[t] for t in tags}, manifests, pulled, {}), end)
    return out


rules = st.fixed_dictionaries({}, optional={
    "keep_newest": st.integers(1, 12),
    "keep_tags": st.sampled_from(["^latest$", "^(latest|stable|lts)", "alpine", "^[0-9]+$", "-rc"]),
    "keep_range": st.sampled_from([">=3", "~1.2", "^2", "<1.10", ">=20,<22"]),
    "unpulled_for": st.sampled_from(["30d", "180d", "365d"]),
    "untagged_older_than": st.sampled_from(["1d", "90d", "730d"]),
}).filter(lambda r: any(k in r for k in ("keep_newest", "unpulled_for", "untagged_older_than")))
immutables = st.sampled_from([[], [{"tags": r"^[0-9]+\.[0-9]+\.[0-9]+$"}], [{"tags": "^latest$"}]])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=rules, immutable_table=immutables, image=st.sampled_from(
    ["alpine", "golang", "haproxy", "mongo", "nginx", "node", "postgres", "python", "redis", "traefik"]))
def test_retention_never_deletes_a_kept_tag_and_deletes_every_other(snapshots, table, immutable_table, image):
    snap, end = snapshots[image]
    rule, = parse_retention([table])
    immutable = parse_immutable(immutable_table)
    tags, manifests = plan_repository(NAME, snap, rule, immutable, end)

    families = collections.defaultdict(list)
    for tag in snap.tags:
        families[parse_tag(tag).family].append(tag)
    newest = {t for members in families.values()
              for t in sort_tags(members, descending=True)[:rule.keep_newest or 0]}

    def kept(tag: str) -> bool:
        last = max(snap.pulled.get(f"t:{tag}", 0), snap.updated[tag])
        return (parse_tag(tag).kind == "signature"
                or any(r.pattern.search(tag) for r in immutable)
                or (rule.keep_pattern is not None and rule.keep_pattern.search(tag) is not None)
                or (rule.range is not None and rule.range.contains(tag))
                or (rule.keep_newest is not None and tag in newest)
                or (rule.unpulled_for_ms is not None and last > end - rule.unpulled_for_ms))

    expected = {t for t in snap.tags if not kept(t)} if rule.deletes_tags else set()
    assert set(tags) == expected
    assert all(tags[t] for t in tags)  # every deletion says why
    staying = {d for t, d in snap.tags.items() if t not in tags}
    for d, reasons in manifests.items():
        assert d not in staying
        assert snap.manifests[d]["pushedAt"] < end - rule.untagged_older_than_ms
        assert reasons
    if rule.untagged_older_than_ms is None:
        assert manifests == {}
    else:
        old = {d for d, e in snap.manifests.items() if e["pushedAt"] < end - rule.untagged_older_than_ms}
        assert set(manifests) == old - staying


def test_a_real_plan_keeps_the_newest_of_each_family(snapshots):
    snap, end = snapshots["redis"]
    rule, = parse_retention([{"keep_newest": 2}])
    tags, _manifests = plan_repository(NAME, snap, rule, (), end)
    family = sort_tags([t for t in snap.tags if parse_tag(t).family == parse_tag("7.2.0").family], descending=True)
    assert len(family) > 2
    assert [t for t in family if t not in tags] == family[:2]
    assert tags[family[2]] == ("not among the 2 newest of family N.N.N (number 3)",)
