"""Immutable-tag and retention rules from the configuration, validated (pure; config.py checks them at
load, the manifest service and services/retention.py use them).

::

    [[immutable_tags.rules]]
    repositories = ["**"]                      # globs (oci/repo_filter.py); empty: every repository
    tags = '^v?[0-9]+\\.[0-9]+\\.[0-9]+$'      # RE2, searched in the tag (anchor it to match it whole)

    [[retention.rules]]
    repositories = ["apps/**"]                 # the first rule whose globs match a repository applies
    keep_newest = 5                            # the 5 newest tags of each version family
    keep_tags = '^(latest|stable|main)$'       # RE2: tags it matches are kept
    keep_range = ">=2.0"                       # a version range (oci/version_ranges.py): tags in it are kept
    unpulled_for = "90d"                       # tags pulled within 90 days (or moved within them) are kept
    untagged_older_than = "14d"                # untagged manifests pushed before that are deleted

Patterns are RE2 (linear time, no backtracking), like the client-supplied
ones. A rule deletes tags only when it has ``keep_newest`` or
``unpulled_for``; a tag goes only when none of the rule's keeps holds.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from registry_ext.oci.repo_filter import RepoFilterError, compile_glob_list
from registry_ext.oci.tag_filter import compile_re2
from registry_ext.oci.version_ranges import VersionRange, parse_range

PATTERN_MAX = 512
RULES_MAX = 1000
_DURATION = re.compile(r"([0-9]{1,6})([dhms])")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


class RuleError(ValueError):
    """A rule's table is invalid; the message says which key."""


@dataclasses.dataclass(frozen=True)
class ImmutableRule:
    """Tags matching ``tags`` in repositories matching ``repositories`` cannot be moved or deleted."""

    number: int  # 1-based position in immutable_tags.rules, named in refusals
    tags: str
    repositories: tuple[str, ...] = ()
    globs: tuple[Any, ...] = dataclasses.field(default=(), compare=False, repr=False)
    pattern: Any = dataclasses.field(default=None, compare=False, repr=False)

    def covers(self, repository: str, tag: str) -> bool:
        return _repo_matches(self.globs, repository) and self.pattern.search(tag) is not None

    def describe(self) -> str:
        where = ", ".join(self.repositories) if self.repositories else "every repository"
        return f"immutable_tags.rules[{self.number}] (tags '{self.tags}' in {where})"


@dataclasses.dataclass(frozen=True)
class RetentionRule:
    number: int  # 1-based position in retention.rules, named in reports
    repositories: tuple[str, ...] = ()
    keep_newest: int | None = None
    keep_tags: str = ""
    keep_range: str = ""
    unpulled_for_ms: int | None = None
    untagged_older_than_ms: int | None = None
    globs: tuple[Any, ...] = dataclasses.field(default=(), compare=False, repr=False)
    keep_pattern: Any = dataclasses.field(default=None, compare=False, repr=False)
    range: VersionRange | None = dataclasses.field(default=None, compare=False, repr=False)

    def applies_to(self, repository: str) -> bool:
        return _repo_matches(self.globs, repository)

    @property
    def deletes_tags(self) -> bool:
        return self.keep_newest is not None or self.unpulled_for_ms is not None


def first_rule(rules: tuple[RetentionRule, ...], repository: str) -> RetentionRule | None:
    """The rule that applies to ``repository`` (the first whose globs match), if any."""
    return next((rule for rule in rules if rule.applies_to(repository)), None)


def immutable_rule(rules: tuple[ImmutableRule, ...], repository: str, tag: str) -> ImmutableRule | None:
    """The first immutable-tag rule covering ``tag`` of ``repository``, if any."""
    return next((rule for rule in rules if rule.covers(repository, tag)), None)


def _repo_matches(globs: tuple[Any, ...], repository: str) -> bool:
    return not globs or any(g.fullmatch(repository) for g in globs)


_IMMUTABLE_TYPES: dict[str, type] = {"repositories": list, "tags": str}
_RETENTION_TYPES: dict[str, type] = {"repositories": list, "keep_newest": int, "keep_tags": str,
                                     "keep_range": str, "unpulled_for": str, "untagged_older_than": str}


def parse_immutable(rules: Any) -> tuple[ImmutableRule, ...]:
    """Immutable-tag rules from ``immutable_tags.rules``.

    Raises:
        RuleError
    """
    out = []
    for number, table in _tables(rules, "immutable_tags.rules", _IMMUTABLE_TYPES):
        where = f"immutable_tags.rules[{number}]"
        if not table.get("tags"):
            raise RuleError(f"{where}.tags: required, an RE2 pattern like '^v?[0-9]+\\.[0-9]+\\.[0-9]+$'")
        repositories = table.get("repositories", ())
        out.append(ImmutableRule(number, table["tags"], tuple(repositories), _globs(where, repositories),
                                 _pattern(f"{where}.tags", table["tags"])))
    return tuple(out)


def parse_retention(rules: Any) -> tuple[RetentionRule, ...]:
    """Retention rules from ``retention.rules``.

    Raises:
        RuleError
    """
    out = []
    for number, table in _tables(rules, "retention.rules", _RETENTION_TYPES):
        where = f"retention.rules[{number}]"
        keep_newest = table.get("keep_newest")
        if keep_newest is not None and not 1 <= keep_newest <= 10_000:
            raise RuleError(f"{where}.keep_newest: must be 1-10000")
        rule = RetentionRule(
            number, tuple(table.get("repositories", ())), keep_newest, table.get("keep_tags", ""),
            table.get("keep_range", ""), _duration(f"{where}.unpulled_for", table.get("unpulled_for")),
            _duration(f"{where}.untagged_older_than", table.get("untagged_older_than")),
            _globs(where, table.get("repositories", ())),
            _pattern(f"{where}.keep_tags", table["keep_tags"]) if table.get("keep_tags") else None,
            _range(f"{where}.keep_range", table["keep_range"]) if table.get("keep_range") else None)
        if not rule.deletes_tags and rule.untagged_older_than_ms is None:
            raise RuleError(f"{where}: deletes nothing; give keep_newest, unpulled_for or untagged_older_than")
        out.append(rule)
    return tuple(out)


def _tables(rules: Any, where: str, types: Mapping[str, type]):
    if not isinstance(rules, list) or len(rules) > RULES_MAX:
        raise RuleError(f"{where}: a list of at most {RULES_MAX} tables")
    for number, table in enumerate(rules, 1):
        if not isinstance(table, Mapping):
            raise RuleError(f"{where}[{number}]: must be a table")
        for key, value in table.items():
            if key not in types:
                raise RuleError(f"unknown key {where}[{number}].{key}")
            if not isinstance(value, types[key]) or isinstance(value, bool):
                raise RuleError(f"{where}[{number}].{key}: wrong type {type(value).__name__}")
        yield number, table


def _globs(where: str, patterns: list) -> tuple[Any, ...]:
    try:
        return compile_glob_list(patterns)
    except RepoFilterError as exc:
        raise RuleError(f"{where}.repositories: {exc}") from None


def _pattern(where: str, pattern: str):
    if len(pattern) > PATTERN_MAX:
        raise RuleError(f"{where}: longer than {PATTERN_MAX} characters")
    try:
        return compile_re2(pattern)
    except ValueError as exc:
        raise RuleError(f"{where}: invalid or unsupported by RE2: {exc}") from None


def _range(where: str, text: str) -> VersionRange:
    try:
        return parse_range(text)
    except ValueError as exc:
        raise RuleError(f"{where}: {exc}") from None


def _duration(where: str, text: str | None) -> int | None:
    """``"90d"``, ``"12h"``, ``"30m"``, ``"45s"`` in milliseconds (None when absent)."""
    if text is None:
        return None
    match = _DURATION.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise RuleError(f"{where}: a duration like \"90d\", \"12h\", \"30m\" or \"45s\" (above 0)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
