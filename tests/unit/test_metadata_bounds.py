"""bound_fields: what an index entry keeps of its pusher-sized fields (issue #10, item 7)."""
import orjson
import pytest

from registry_ext.oci.metadata import BOUNDED_FIELDS, bound_fields

BASE = {"mediaType": "application/vnd.oci.image.index.v1+json", "size": 10, "pushedAt": 1,
        "subject": "sha256:" + "a" * 64}


def fields_size(entry):
    return sum(len(orjson.dumps(entry[f])) for f in BOUNDED_FIELDS if f in entry)


def test_small_entries_are_unchanged():
    entry = dict(BASE, created="2025-01-01T00:00:00Z", platforms=["linux/amd64"], labels={"version": "1"})
    assert bound_fields(entry, 4096) == entry


def test_fields_get_the_budget_in_order_and_cuts_are_named():
    entry = dict(BASE, artifactType="a/b", created="c" * 50, labels={"title": "t" * 5000, "version": "1.0"},
                 platforms=[f"linux/arch{i}" for i in range(1000)])
    bounded = bound_fields(entry, 1024)
    assert {k: bounded[k] for k in BASE} == BASE  # fixed-size fields untouched
    assert bounded["artifactType"] == "a/b" and bounded["created"] == "c" * 50
    assert bounded["labels"] == {"version": "1.0"}  # the label that fits stays
    assert bounded["platforms"] == entry["platforms"][:len(bounded["platforms"])] and bounded["platforms"]
    assert bounded["truncated"] == ["labels", "platforms"]
    assert fields_size(bounded) <= 1024


def test_a_string_that_does_not_fit_is_dropped():
    bounded = bound_fields(dict(BASE, created="c" * 5000, labels={"version": "2"}), 100)
    assert "created" not in bounded and bounded["labels"] == {"version": "2"}
    assert bounded["truncated"] == ["created"]


@pytest.mark.parametrize("budget", [0, 1, 17, 100, 1000])
def test_bounding_is_idempotent(budget):
    entry = dict(BASE, artifactType="x" * 30, created="c" * 40, labels={"a": "b" * 60, "c": "d"},
                 platforms=["p" * 10] * 20)
    once = bound_fields(entry, budget)
    assert bound_fields(once, budget) == once
    assert fields_size(once) <= budget
