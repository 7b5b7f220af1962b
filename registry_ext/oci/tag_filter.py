"""Tag filters of the extension listings: prefix, glob, regex, version range, kind, variant (pure).

Regexes run on RE2 (``google-re2``), whose matching time is linear in the
input, so a hostile pattern cannot backtrack catastrophically; patterns
are also capped in length. Globs use ``fnmatch`` syntax on the whole tag.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Any

import re2

from registry_ext.oci.version_ranges import VersionRange, parse_range
from registry_ext.oci.versions import parse_tag

PATTERN_MAX = 256
KINDS = frozenset({"release", "prerelease", "nonversion", "signature"})


class FilterError(ValueError):
    """A filter parameter that cannot be used; the message says why."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


@dataclasses.dataclass(frozen=True)
class TagFilter:
    prefix: str | None = None
    glob: re.Pattern | None = None
    regex: Any | None = None  # a compiled re2 pattern (re2 publishes no types)
    version_range: VersionRange | None = None
    kinds: frozenset[str] | None = None
    variant: str | None = None

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))

    def matches(self, tag: str) -> bool:
        if self.prefix is not None and not tag.startswith(self.prefix):
            return False
        if self.glob is not None and not self.glob.match(tag):
            return False
        if self.regex is not None and not self.regex.search(tag):
            return False
        if self.kinds is None and self.variant is None and self.version_range is None:
            return True
        version = parse_tag(tag)
        if self.kinds is not None and version.kind not in self.kinds:
            return False
        if self.variant is not None and (version.variant or "") != self.variant:
            return False
        return self.version_range is None or self.version_range.contains(tag)


def build_filter(prefix: str | None = None, glob: str | None = None, regex: str | None = None,
                 version_range: str | None = None, kind: str | None = None,
                 variant: str | None = None) -> TagFilter:
    """Validate raw query values into a TagFilter. Raises FilterError."""
    for label, value in (("prefix", prefix), ("glob", glob), ("regex", regex), ("range", version_range),
                         ("variant", variant)):
        if value is not None and len(value) > PATTERN_MAX:
            raise FilterError(label, f"{label} is longer than {PATTERN_MAX} characters")
    return TagFilter(prefix=prefix or None, glob=_glob(glob), regex=_regex(regex),
                     version_range=_range(version_range), kinds=_kinds(kind), variant=variant or None)


def _glob(pattern: str | None) -> re.Pattern | None:
    return re.compile(fnmatch.translate(pattern)) if pattern else None


def compile_re2(pattern: str):
    """Compile a pattern a client or the configuration supplies with RE2: linear time, at most 1 MiB of
    automaton, so no pattern can backtrack or eat memory. Raises ValueError with RE2's reason."""
    options = re2.Options()
    options.max_mem = 1 << 20
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(str(reason)) from None


def _regex(pattern: str | None):
    if not pattern:
        return None
    try:
        return compile_re2(pattern)
    except ValueError as exc:
        raise FilterError("regex", f"regex is invalid or unsupported by RE2: {exc}") from None


def _range(text: str | None) -> VersionRange | None:
    if not text:
        return None
    try:
        return parse_range(text)
    except ValueError as exc:
        raise FilterError("range", f"range is invalid: {exc}") from None


def _kinds(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    kinds = frozenset(part.strip() for part in text.split(","))
    unknown = kinds - KINDS
    if unknown:
        raise FilterError("kind", f"unknown kind {sorted(unknown)[0]!r}; expected one of {sorted(KINDS)}")
    return kinds
