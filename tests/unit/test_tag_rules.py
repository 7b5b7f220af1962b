"""Immutable-tag and retention rules from the configuration (registry_ext/tag_rules.py): strict validation,
first-match rule choice, RE2 patterns."""
from __future__ import annotations

import pytest

from registry_ext.config import ConfigError, load_settings
from registry_ext.tag_rules import RuleError, first_rule, immutable_rule, parse_immutable, parse_retention


@pytest.mark.parametrize("rules, message", [
    ({}, "retention.rules: a list of at most 1000 tables"),
    ([1], "retention.rules[1]: must be a table"),
    ([{"keep_newest": 2, "keep": 1}], "unknown key retention.rules[1].keep"),
    ([{"keep_newest": True}], "retention.rules[1].keep_newest: wrong type bool"),
    ([{"keep_newest": "5"}], "retention.rules[1].keep_newest: wrong type str"),
    ([{"keep_newest": 0}], "retention.rules[1].keep_newest: must be 1-10000"),
    ([{"keep_newest": 1, "repositories": ["Apps/*"]}],
     "retention.rules[1].repositories: glob may hold only a-z 0-9 . _ - / and the wildcards * ** ?"),
    ([{"keep_newest": 1, "repositories": [""]}], "retention.rules[1].repositories: a list of non-empty globs"),
    ([{"keep_newest": 1, "keep_tags": "(?=x)"}],
     "retention.rules[1].keep_tags: invalid or unsupported by RE2: invalid perl operator: (?="),
    ([{"keep_newest": 1, "keep_tags": "a" * 513}], "retention.rules[1].keep_tags: longer than 512 characters"),
    ([{"keep_newest": 1, "keep_range": ">=1 || <0"}],
     "retention.rules[1].keep_range: alternatives ('||') are not supported; ask once per range"),
    ([{"untagged_older_than": "0d"}],
     'retention.rules[1].untagged_older_than: a duration like "90d", "12h", "30m" or "45s" (above 0)'),
    ([{"untagged_older_than": "1.5d"}],
     'retention.rules[1].untagged_older_than: a duration like "90d", "12h", "30m" or "45s" (above 0)'),
    ([{"keep_tags": "x", "keep_range": ">=1"}],
     "retention.rules[1]: deletes nothing; give keep_newest, unpulled_for or untagged_older_than"),
])
def test_bad_retention_rules_are_refused_with_the_key(rules, message):
    with pytest.raises(RuleError) as info:
        parse_retention(rules)
    assert str(info.value) == message


@pytest.mark.parametrize("rules, message", [
    ([{"repositories": ["**"]}],
     "immutable_tags.rules[1].tags: required, an RE2 pattern like '^v?[0-9]+\\.[0-9]+\\.[0-9]+$'"),
    ([{"tags": "x", "tag": "y"}], "unknown key immutable_tags.rules[1].tag"),
    ([{"tags": ["x"]}], "immutable_tags.rules[1].tags: wrong type list"),
    ([{"tags": "(a"}], "immutable_tags.rules[1].tags: invalid or unsupported by RE2: missing ): (a"),
])
def test_bad_immutable_rules_are_refused_with_the_key(rules, message):
    with pytest.raises(RuleError) as info:
        parse_immutable(rules)
    assert str(info.value) == message


def test_config_loading_refuses_a_bad_rule_and_keeps_good_ones():
    with pytest.raises(ConfigError, match=r"^retention.rules\[2\].unpulled_for: a duration"):
        load_settings(data={"retention": {"rules": [{"keep_newest": 1}, {"unpulled_for": "3w"}]}}, environ={})
    settings = load_settings(data={"retention": {"rules": [{"keep_newest": 1}]},
                                   "immutable_tags": {"rules": [{"tags": "^v1"}]}}, environ={})
    assert settings.retention.rules == [{"keep_newest": 1}]
    assert settings.immutable_tags.rules == [{"tags": "^v1"}]


def test_durations_and_the_first_matching_rule():
    rules = parse_retention([{"repositories": ["apps/*"], "unpulled_for": "12h"},
                             {"repositories": ["apps/**"], "untagged_older_than": "30m"},
                             {"keep_newest": 3, "unpulled_for": "45s"}])
    assert [r.unpulled_for_ms for r in rules] == [12 * 3_600_000, None, 45_000]
    assert rules[1].untagged_older_than_ms == 30 * 60_000
    assert first_rule(rules, "apps/web").number == 1
    assert first_rule(rules, "apps/web/api").number == 2
    assert first_rule(rules, "base/os").number == 3
    assert first_rule(rules[:2], "base/os") is None


def test_immutable_rules_search_the_tag_in_matching_repositories():
    rules = parse_immutable([{"repositories": ["base/*"], "tags": "^[0-9]{8}$"}, {"tags": r"^v?\d+\.\d+\.\d+$"}])
    assert immutable_rule(rules, "base/os", "20240101").number == 1
    assert immutable_rule(rules, "apps/web", "20240101") is None
    assert immutable_rule(rules, "apps/web", "v1.2.3").number == 2
    assert immutable_rule(rules, "apps/web", "1.2.3-rc1") is None
    assert rules[1].describe() == r"immutable_tags.rules[2] (tags '^v?\d+\.\d+\.\d+$' in every repository)"
