"""Which repositories a feed request, a long-poll or a webhook endpoint wants (pure).

A filter is a union: a repository matches when it is one of ``names``,
starts with ``prefix``, or matches ``glob``. A filter with none of the
three matches every repository.

Glob syntax over repository names: ``*`` is any run of characters other
than ``/``, ``**`` any run including ``/``, ``?`` one character other than
``/``; every other character stands for itself (only the characters of the
name grammar and ``*?`` are accepted). Globs run on RE2, whose matching
time is linear in the name, so no pattern can backtrack catastrophically.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable

import re2

from registry_ext.oci.reference import NAME_MAX, NAME_RE

PATTERN_MAX = 256
_GLOB_CHARS = re.compile(r"[a-z0-9._/*?-]+")


class RepoFilterError(ValueError):
    """A filter value that cannot be used; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


@dataclasses.dataclass(frozen=True)
class RepoFilter:
    names: frozenset[str] | None = None
    prefix: str | None = None
    glob: str | None = None
    _compiled: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def everything(self) -> bool:
        return self.names is None and self.prefix is None and self.glob is None

    def matches(self, name: str) -> bool:
        if self.everything:
            return True
        if self.names is not None and name in self.names:
            return True
        if self.prefix is not None and name.startswith(self.prefix):
            return True
        return self._compiled is not None and self._compiled.fullmatch(name) is not None

    def patterns_only(self) -> "RepoFilter":
        """The same filter without its names (an empty one matches nothing)."""
        if self.prefix is None and self.glob is None:
            return RepoFilter(None, "\0")  # no repository name starts with NUL
        return RepoFilter(None, self.prefix, self.glob, self._compiled)

    def spec(self) -> dict[str, Any]:
        """A JSON-able form (``from_spec`` reads it back): sorted names, prefix, glob."""
        out: dict[str, Any] = {}
        if self.names is not None:
            out["repositories"] = sorted(self.names)
        if self.prefix is not None:
            out["prefix"] = self.prefix
        if self.glob is not None:
            out["glob"] = self.glob
        return out


def build(names: Iterable[str] | None = None, prefix: str | None = None, glob: str | None = None,
          max_names: int = 1000) -> RepoFilter:
    """Validate raw values into a RepoFilter.

    Raises:
        RepoFilterError: too many names, an invalid name, an over-long prefix or an invalid glob.
    """
    chosen = None
    if names is not None:
        chosen = frozenset(names)
        if len(chosen) > max_names:
            raise RepoFilterError("repository", f"at most {max_names} repositories per request "
                                                f"(got {len(chosen)}); use prefix or glob")
        for name in chosen:
            if not isinstance(name, str) or len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
                raise RepoFilterError("repository", f"invalid repository name {str(name)[:100]!r}")
        chosen = chosen or None
    if prefix is not None and len(prefix) > PATTERN_MAX:
        raise RepoFilterError("prefix", f"prefix is longer than {PATTERN_MAX} characters")
    return RepoFilter(chosen, prefix or None, glob or None, compile_glob(glob) if glob else None)


def from_spec(spec: dict[str, Any], max_names: int = 100_000) -> RepoFilter:
    """The filter a ``spec()`` described (validated again: specs travel through Redis and tokens)."""
    return build(spec.get("repositories"), spec.get("prefix"), spec.get("glob"), max_names)


def compile_glob_list(patterns: list) -> tuple:
    """A configuration's list of globs, compiled (the proxy's and the tag rules' ``repositories``).

    Raises:
        RepoFilterError: an entry that is empty, not a string, or not a usable glob
    """
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise RepoFilterError("repositories", "a list of non-empty globs")
        compiled.append(compile_glob(pattern))
    return tuple(compiled)


def compile_glob(pattern: str):
    """A glob as an RE2 pattern (see the module docstring).

    Raises:
        RepoFilterError
    """
    if len(pattern) > PATTERN_MAX:
        raise RepoFilterError("glob", f"glob is longer than {PATTERN_MAX} characters")
    if not _GLOB_CHARS.fullmatch(pattern):
        raise RepoFilterError("glob", "glob may hold only a-z 0-9 . _ - / and the wildcards * ** ?")
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    options = re2.Options()
    options.max_mem = 1 << 20
    options.log_errors = False
    return re2.compile("".join(parts), options)
