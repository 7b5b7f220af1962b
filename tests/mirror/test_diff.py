"""The pure diff engine: every category, signatures and orphans, index vs platform, Docker vs OCI, exit codes."""
from __future__ import annotations

from registry_ext.mirror.diff import (NOTE_DOCKER_VS_OCI, NOTE_INDEX_VS_PLATFORM, NOTE_MEDIA_TYPE, Listing, Report,
                                      TagInfo, change_note, diff_repo, subjects_to_resolve)
from registry_ext.oci.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

D1, D2, D3, D4 = (f"sha256:{c * 64}" for c in "1234")
SIG = f"sha256-{'1' * 64}.sig"
ATT = f"sha256-{'9' * 64}.att"  # subject 9… exists nowhere
REF = f"sha256-{'3' * 64}"


def listing(tags: dict, **kw) -> Listing:
    return Listing("app", {t: v if isinstance(v, TagInfo) else TagInfo(v, OCI_MANIFEST) for t, v in tags.items()},
                   **kw)


def test_every_category():
    a = listing({"same": D1, "moved": D1, "gone": D2, SIG: D3, ATT: D4})
    b = listing({"same": D1, "moved": D2, "new": D3, SIG: D4, REF: D4})
    r = diff_repo(a, b)
    assert r.only_a == [{"tag": "gone", "digest": D2, "media_type": OCI_MANIFEST}]
    assert r.only_b == [{"tag": "new", "digest": D3, "media_type": OCI_MANIFEST}]
    assert r.changed == [{"tag": "moved", "digest_a": D1, "digest_b": D2, "media_type_a": OCI_MANIFEST,
                          "media_type_b": OCI_MANIFEST, "note": None}]
    assert r.identical == 1
    by_tag = {s["tag"]: s for s in r.signatures}
    assert by_tag[SIG] == {"tag": SIG, "kind": "sig", "subject": D1, "status": "changed", "digest_a": D3,
                           "digest_b": D4, "orphan_a": False, "orphan_b": False}
    assert by_tag[ATT]["status"] == "only_a" and by_tag[ATT]["orphan_a"] is True
    assert by_tag[REF] == {"tag": REF, "kind": "referrers", "subject": D3, "status": "only_b", "digest_a": None,
                           "digest_b": D4, "orphan_a": False, "orphan_b": False}
    assert r.status == "differs" and r.differs


def test_identical_signature_orphaned_on_one_side_is_reported():
    a = listing({"v1": D1, SIG: D3})
    b = listing({SIG: D3})
    r = diff_repo(a, b)
    assert [s["tag"] for s in r.signatures] == [SIG]
    assert r.signatures[0]["status"] == "identical"
    assert (r.signatures[0]["orphan_a"], r.signatures[0]["orphan_b"]) == (False, True)


def test_subject_known_untagged_is_not_orphaned():
    b = listing({SIG: D3}, manifests={D1})
    assert subjects_to_resolve(listing({SIG: D3})) == [D1]
    assert subjects_to_resolve(b) == []
    r = diff_repo(listing({SIG: D3}, manifests={D1}), b)
    assert r.signatures == [] and r.signatures_identical == 1 and r.status == "identical"


def test_notes_from_media_types():
    assert change_note(OCI_INDEX, OCI_MANIFEST) == NOTE_INDEX_VS_PLATFORM
    assert change_note(DOCKER_MANIFEST, DOCKER_LIST) == NOTE_INDEX_VS_PLATFORM
    assert change_note(DOCKER_MANIFEST, OCI_MANIFEST) == NOTE_DOCKER_VS_OCI
    assert change_note(OCI_INDEX, DOCKER_LIST) == NOTE_DOCKER_VS_OCI
    assert change_note("application/x-other", OCI_MANIFEST) == NOTE_MEDIA_TYPE
    assert change_note(OCI_MANIFEST, OCI_MANIFEST) is None
    assert change_note(None, OCI_MANIFEST) is None
    r = diff_repo(listing({"t": TagInfo(D1, OCI_INDEX)}), listing({"t": TagInfo(D2, OCI_MANIFEST)}))
    assert r.changed[0]["note"] == NOTE_INDEX_VS_PLATFORM


def test_untagged_only_when_both_sides_tell():
    a = listing({"t": D1}, untagged={D2: D1, D3: None})
    b = listing({"t": D1, "u": D3}, untagged={D4: None})
    r = diff_repo(a, b)
    assert r.untagged_only_a == [{"digest": D2, "subject": D1}]  # a referrer of D1
    assert r.untagged_only_b == [{"digest": D4, "subject": None}]
    assert diff_repo(listing({}, untagged={D2: None}), listing({})).untagged_only_a is None


def test_missing_error_partial_and_exit_codes():
    missing = diff_repo(listing({"t": D1}), Listing("app", missing=True))
    assert missing.missing == "b" and missing.only_a and missing.status == "differs"
    assert diff_repo(Listing("x", missing=True), Listing("x", missing=True)).missing == "both"
    failed = diff_repo(listing({"t": D1}), Listing("app", error="HTTP 500"))
    assert failed.errors == ["B: HTTP 500"] and failed.status == "error" and not failed.only_a
    partial = diff_repo(listing({"t": D1}), listing({"t": D1}, partial=["stopped after 3 pages"]))
    assert partial.partial == ["B: stopped after 3 pages"] and partial.status == "partial"
    same = diff_repo(listing({"t": D1}), listing({"t": D1}))
    assert Report("a", "b", [same]).exit_code == 0
    assert Report("a", "b", [same, missing]).exit_code == 1
    assert Report("a", "b", [same, missing, partial]).exit_code == 2
    assert Report("a", "b", [same, failed]).exit_code == 2
    assert Report("a", "b", [same], errors=["catalog: HTTP 401"]).exit_code == 2
    counts = Report("a", "b", [same, missing, failed]).counts()
    assert counts["only_a"] == 1 and counts["missing"] == 1 and counts["errors"] == 1 and counts["identical"] == 1
