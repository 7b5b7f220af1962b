"""Who may do what on which repository: ordered rules, first match wins.

A rule is (repository glob, who, actions). ``who`` holds user names,
``group:<name>``, ``*`` (any authenticated user) and ``anonymous`` (callers
without credentials). Actions are ``pull``, ``push``, ``delete`` and ``*``
(all three). For a caller and a repository, the first rule whose glob matches
the repository and whose ``who`` names the caller decides; ``actions = []``
in a rule denies. An authenticated caller also keeps what ``anonymous`` has
(logging in never takes access away). No matching rule: nothing.

Globs (as zot's): ``*`` matches within one path component, ``**`` across
components, ``?`` one character other than ``/``; the whole name must match.
``team/**`` matches ``team/app`` and ``team/a/b``, not ``team`` itself.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Iterable, Mapping

ACTIONS = frozenset({"pull", "push", "delete"})
ANONYMOUS = "anonymous"
ANY_USER = "*"
GROUP = "group:"
NOTHING: frozenset[str] = frozenset()
_GLOB = re.compile(r"[a-z0-9._\-/*?]{1,255}")
_WHO = re.compile(r"[^\s:]{1,128}")


class RuleError(ValueError):
    """A rule, group or glob in the configuration is invalid."""


@dataclasses.dataclass(frozen=True)
class Rule:
    pattern: re.Pattern
    glob: str
    who: "Who"
    actions: frozenset[str]


def compile_glob(glob: str) -> re.Pattern:
    """The regular expression of a repository glob (see the module docstring)."""
    if not _GLOB.fullmatch(glob):
        raise RuleError(f"repository glob {glob!r}: lowercase letters, digits, . _ - / * ? only, "
                        "1-255 characters")
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out))


def parse_actions(values: Iterable, where: str) -> frozenset[str]:
    """``pull``/``push``/``delete``/``*`` into a set of the three actions."""
    actions: set[str] = set()
    for value in values:
        if value == "*":
            actions |= ACTIONS
        elif value in ACTIONS:
            actions.add(value)
        else:
            raise RuleError(f"{where}: unknown action {value!r} (pull, push, delete or *)")
    return frozenset(actions)


@dataclasses.dataclass(frozen=True)
class Who:
    """A parsed ``who`` list (rules, ``catalog``, ``metrics``, ``readyz``)."""

    users: frozenset[str]
    groups: frozenset[str]
    any_user: bool
    anonymous: bool

    def names(self, user: str | None, groups: frozenset[str]) -> bool:
        """True when the list names this caller (``user`` None: anonymous)."""
        if user is None:
            return self.anonymous
        return self.any_user or user in self.users or not self.groups.isdisjoint(groups)


def parse_who(values, where: str, known_groups: Mapping[str, object]) -> Who:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RuleError(f"{where}: must be a list of strings")
    users, groups, any_user, anonymous = set(), set(), False, False
    for value in values:
        if value == ANONYMOUS:
            anonymous = True
        elif value == ANY_USER:
            any_user = True
        elif value.startswith(GROUP):
            name = value[len(GROUP):]
            if name not in known_groups:
                raise RuleError(f"{where}: group {name!r} is not defined in auth.groups")
            groups.add(name)
        elif _WHO.fullmatch(value):
            users.add(value)
        else:
            raise RuleError(f"{where}: {value!r} is not a user name, group:<name>, * or anonymous")
    return Who(frozenset(users), frozenset(groups), any_user, anonymous)


class Rules:
    """The compiled rules and groups; answers are cached per (user, repository)."""

    def __init__(self, rules: list[Rule], groups: Mapping[str, frozenset[str]]):
        self.rules = rules
        self.member_of: dict[str, frozenset[str]] = {}
        for group, members in groups.items():
            for user in members:
                self.member_of[user] = self.member_of.get(user, NOTHING) | {group}
        self.actions = functools.lru_cache(maxsize=16384)(self._actions)

    def groups_of(self, user: str | None) -> frozenset[str]:
        return self.member_of.get(user, NOTHING) if user is not None else NOTHING

    def _actions(self, user: str | None, repository: str) -> frozenset[str]:
        """What ``user`` (None: anonymous) may do on ``repository``."""
        anonymous = self._first(None, NOTHING, repository)
        if user is None:
            return anonymous
        return self._first(user, self.groups_of(user), repository) | anonymous

    def anonymous_pulls_somewhere(self) -> bool:
        """True when some rule lets anonymous callers pull (they may then see a filtered catalog)."""
        return any(rule.who.anonymous and "pull" in rule.actions for rule in self.rules)

    def _first(self, user: str | None, groups: frozenset[str], repository: str) -> frozenset[str]:
        for rule in self.rules:
            if rule.pattern.fullmatch(repository) and rule.who.names(user, groups):
                return rule.actions
        return NOTHING


def compile_rules(raw_rules, raw_groups) -> Rules:
    """Validate and compile ``auth.rules`` and ``auth.groups``.

    Raises:
        RuleError: naming the rule and the problem.
    """
    if not isinstance(raw_groups, Mapping):
        raise RuleError("auth.groups: must be a table of name = [users]")
    groups: dict[str, frozenset[str]] = {}
    for name, members in raw_groups.items():
        if not _WHO.fullmatch(name) or not isinstance(members, list) \
                or not all(isinstance(m, str) and _WHO.fullmatch(m) for m in members):
            raise RuleError(f"auth.groups.{name}: must be a list of user names")
        groups[name] = frozenset(members)
    if not isinstance(raw_rules, list):
        raise RuleError("auth.rules: must be a list of tables")
    rules = []
    for i, raw in enumerate(raw_rules):
        where = f"auth.rules[{i}]"
        if not isinstance(raw, Mapping) or set(raw) != {"repository", "who", "actions"}:
            raise RuleError(f"{where}: must have exactly repository, who and actions")
        if not isinstance(raw["repository"], str) or not isinstance(raw["actions"], list):
            raise RuleError(f"{where}: repository is a string, actions a list")
        who = parse_who(raw["who"], f"{where}.who", groups)
        rules.append(Rule(compile_glob(raw["repository"]), raw["repository"], who,
                          parse_actions(raw["actions"], f"{where}.actions")))
    return Rules(rules, groups)
