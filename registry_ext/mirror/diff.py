"""The diff engine (pure: no I/O): two listings of one repository -> a :class:`RepoDiff`.

Categories for ordinary tags: only in A, only in B, same tag with different
digests (``changed``), identical (counted). Signature, attestation, SBOM and
referrers-fallback tags (``sha256-<hex>[.sig|.att|.sbom]``, see
``oci/versions.parse_tag``) are compared separately and flagged *orphaned* on
a side that does not hold their subject manifest. A changed tag gets a
``note`` when the media types tell why: an index on one side and a platform
manifest on the other (the mirror copied one platform, or the registries
negotiated different ``Accept``), or a Docker-format manifest on one side and
an OCI one on the other (a conversion, as zot does without
``preserveDigest``). Untagged manifests are compared when both sides can
list them; referrers among them carry their subject. A listing that could not be read completely makes the
report ``partial``, with the reasons.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from registry_ext.oci.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, INDEXES, OCI_INDEX, OCI_MANIFEST
from registry_ext.oci.versions import SIGNATURE, parse_tag

NOTE_INDEX_VS_PLATFORM = "index-vs-platform"
NOTE_DOCKER_VS_OCI = "docker-vs-oci"
NOTE_MEDIA_TYPE = "media-type-differs"
_DOCKER_TO_OCI = {DOCKER_MANIFEST: OCI_MANIFEST, DOCKER_LIST: OCI_INDEX}


@dataclasses.dataclass(frozen=True)
class TagInfo:
    """What one side says about a tag: its digest and (when known) the manifest media type."""

    digest: str
    media_type: str | None = None


@dataclasses.dataclass
class Listing:
    """Everything read from one side for one repository.

    ``manifests`` are digests known to exist besides the tagged ones (untagged
    manifests, signature subjects resolved one by one); ``untagged`` is None
    when the side was not asked or cannot tell.
    """

    repo: str
    tags: dict[str, TagInfo] = dataclasses.field(default_factory=dict)
    untagged: dict[str, str | None] | None = None  # untagged manifest digest -> its subject (referrers)
    manifests: set[str] = dataclasses.field(default_factory=set)
    missing: bool = False  # the repository does not exist on this side
    error: str | None = None  # nothing usable could be read
    partial: list[str] = dataclasses.field(default_factory=list)  # why the listing may be incomplete
    method: str = ""  # local | enriched | plain
    requests: int = 0

    def has_manifest(self, digest: str) -> bool:
        return digest in self.manifests or any(t.digest == digest for t in self.tags.values())


@dataclasses.dataclass
class RepoDiff:
    repo_a: str
    repo_b: str
    only_a: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    only_b: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    changed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    identical: int = 0
    signatures: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # differing or orphaned
    signatures_identical: int = 0
    untagged_only_a: list[dict[str, Any]] | None = None  # {"digest", "subject"}: subject set for referrers
    untagged_only_b: list[dict[str, Any]] | None = None
    missing: str | None = None  # "a", "b" or "both": the repository does not exist there
    errors: list[str] = dataclasses.field(default_factory=list)
    partial: list[str] = dataclasses.field(default_factory=list)
    methods: dict[str, str] = dataclasses.field(default_factory=dict)
    requests: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return bool(self.only_a or self.only_b or self.changed or self.signatures or self.untagged_only_a
                    or self.untagged_only_b or self.missing)

    @property
    def status(self) -> str:
        """error | partial | differs | identical."""
        if self.errors:
            return "error"
        if self.partial:
            return "partial"
        return "differs" if self.differs else "identical"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["status"] = self.status
        return out


@dataclasses.dataclass
class Report:
    a: str
    b: str
    repos: list[RepoDiff] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)  # not tied to one repository
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 identical, 1 differences found, 2 error or partial (the comparison is not conclusive)."""
        if self.errors or any(r.errors or r.partial for r in self.repos):
            return 2
        return 1 if any(r.differs for r in self.repos) else 0

    def counts(self) -> dict[str, int]:
        total = {"repositories": len(self.repos), "only_a": 0, "only_b": 0, "changed": 0, "identical": 0,
                 "signatures": 0, "untagged_only_a": 0, "untagged_only_b": 0, "missing": 0, "errors": 0,
                 "partial": 0}
        for r in self.repos:
            for key in ("only_a", "only_b", "changed", "signatures"):
                total[key] += len(getattr(r, key))
            total["identical"] += r.identical
            total["untagged_only_a"] += len(r.untagged_only_a or ())
            total["untagged_only_b"] += len(r.untagged_only_b or ())
            total["missing"] += r.missing is not None
            total["errors"] += bool(r.errors)
            total["partial"] += bool(r.partial)
        total["errors"] += len(self.errors)
        return total

    def to_dict(self) -> dict[str, Any]:
        status = {0: "identical", 1: "differs", 2: "error"}[self.exit_code]
        return {"a": self.a, "b": self.b, "status": status, "exit_code": self.exit_code,
                "counts": self.counts(), "errors": self.errors, "seconds": round(self.seconds, 3),
                "repositories": [r.to_dict() for r in self.repos]}


def change_note(a: str | None, b: str | None) -> str | None:
    """Why two manifests of one tag may differ, from their media types (None: not told)."""
    if a is None or b is None or a == b:
        return None
    if (a in INDEXES) != (b in INDEXES):
        return NOTE_INDEX_VS_PLATFORM
    if _DOCKER_TO_OCI.get(a) == b or _DOCKER_TO_OCI.get(b) == a:
        return NOTE_DOCKER_VS_OCI
    return NOTE_MEDIA_TYPE


def diff_repo(a: Listing, b: Listing) -> RepoDiff:
    """Compare two listings of one repository (pure)."""
    out = RepoDiff(a.repo, b.repo, methods={"a": a.method, "b": b.method},
                   requests={"a": a.requests, "b": b.requests})
    out.errors = [f"{side}: {lst.error}" for side, lst in (("A", a), ("B", b)) if lst.error]
    out.partial = [f"A: {p}" for p in a.partial] + [f"B: {p}" for p in b.partial]
    if out.errors:
        return out
    if a.missing or b.missing:
        out.missing = "both" if a.missing and b.missing else ("a" if a.missing else "b")
    for tag in sorted(a.tags.keys() | b.tags.keys()):
        ta, tb = a.tags.get(tag), b.tags.get(tag)
        if parse_tag(tag).kind == SIGNATURE:
            entry = _signature(tag, ta, tb, a, b)
            if entry is None:
                out.signatures_identical += 1
            else:
                out.signatures.append(entry)
        elif tb is None:
            out.only_a.append(_entry(tag, a.tags[tag]))
        elif ta is None:
            out.only_b.append(_entry(tag, tb))
        elif ta.digest != tb.digest:
            out.changed.append({"tag": tag, "digest_a": ta.digest, "digest_b": tb.digest,
                                "media_type_a": ta.media_type, "media_type_b": tb.media_type,
                                "note": change_note(ta.media_type, tb.media_type)})
        else:
            out.identical += 1
    if a.untagged is not None and b.untagged is not None:
        out.untagged_only_a = _untagged_only(a.untagged, b)
        out.untagged_only_b = _untagged_only(b.untagged, a)
    return out


def _untagged_only(mine: dict[str, str | None], other: Listing) -> list[dict[str, Any]]:
    """Untagged manifests (referrers among them) that the other side holds neither untagged nor tagged."""
    theirs = set(other.untagged or ()) | {t.digest for t in other.tags.values()}
    return [{"digest": d, "subject": mine[d]} for d in sorted(set(mine) - theirs)]


def _entry(tag: str, info: TagInfo) -> dict[str, Any]:
    return {"tag": tag, "digest": info.digest, "media_type": info.media_type}


def _signature(tag: str, ta: TagInfo | None, tb: TagInfo | None, a: Listing, b: Listing) -> dict | None:
    """A signature tag's entry, or None when both sides agree and neither is orphaned."""
    version = parse_tag(tag)
    subject = version.subject_digest or ""
    orphan_a = ta is not None and not a.missing and not a.has_manifest(subject)
    orphan_b = tb is not None and not b.missing and not b.has_manifest(subject)
    if ta is None:
        status = "only_b"
    elif tb is None:
        status = "only_a"
    else:
        status = "identical" if ta.digest == tb.digest else "changed"
    if status == "identical" and not (orphan_a or orphan_b):
        return None
    return {"tag": tag, "kind": version.signature_kind, "subject": subject, "status": status,
            "digest_a": ta.digest if ta else None, "digest_b": tb.digest if tb else None,
            "orphan_a": orphan_a, "orphan_b": orphan_b}


def subjects_to_resolve(listing: Listing) -> list[str]:
    """Subjects of signature tags that no tag of the listing points at (ask the side about them)."""
    tagged = {t.digest for t in listing.tags.values()} | listing.manifests
    wanted = {parse_tag(tag).subject_digest for tag in listing.tags if parse_tag(tag).kind == SIGNATURE}
    return sorted(d for d in wanted if d and d not in tagged)
