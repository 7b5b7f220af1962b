"""tests/test_gc.py with the registry's storage on S3 (see conftest.py; docs/gc.md#on-s3).

S3 cannot date an object back, so ``age_all`` becomes a point in time (tests/support/object_gc.py:
what was written or touched before it is old, what comes after is not) and ``collect`` puts the
run's cutoff there. Left out: the tests that date single files back or damage them on the
filesystem (test_blobs_touched_within_the_grace_period_are_kept,
test_a_manifest_whose_bytes_are_unreadable_keeps_its_repositorys_links,
test_a_damaged_manifest_link_keeps_its_repositorys_links); the S3 versions of what they check are in
test_object_gc.py. test_a_touch_between_the_listing_and_the_removal_puts_the_blob_back stays: its
look under gc/ finds nothing on S3, as it must.
"""
import time

import pytest

import tests.test_gc as base
from registry_ext.services.gc import GarbageCollector
from tests.support.object_gc import cutoff_now
from tests.test_gc import *  # noqa: F401,F403

del test_blobs_touched_within_the_grace_period_are_kept  # noqa: F821
del test_a_manifest_whose_bytes_are_unreadable_keeps_its_repositorys_links  # noqa: F821
del test_a_damaged_manifest_link_keeps_its_repositorys_links  # noqa: F821


@pytest.fixture(autouse=True)
def aged_by_a_cutoff(monkeypatch):
    """``age_all`` marks a cutoff; ``collect`` with a grace period takes it (grace 0 stays "now"). gc is
    given the index, as the command and the scheduler give it: a repository whose last blob links it
    removes is gone from S3, and from the catalog with them (services/gc.py)."""
    marked: list[float] = []

    def age_all(reg, seconds: int = 2 * base.HOUR) -> None:
        marked.append(cutoff_now())

    def collect(reg, grace: int = base.HOUR, dry_run: bool = False):
        if grace and marked:
            grace = time.time() - marked[-1]
        return GarbageCollector(reg.storage, grace, reg.index).collect(dry_run=dry_run)

    monkeypatch.setattr(base, "age_all", age_all)
    monkeypatch.setattr(base, "collect", collect)
