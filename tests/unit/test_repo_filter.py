"""Repository filters of the feed and of webhooks: union semantics, glob syntax, limits."""
import pytest

from registry_ext.oci.repo_filter import RepoFilterError, build, compile_glob, from_spec


@pytest.mark.parametrize("glob, name, expected", [
    ("library/*", "library/nginx", True),
    ("library/*", "library/a/b", False),
    ("library/**", "library/a/b", True),
    ("**", "any/thing/at/all", True),
    ("*/app", "team/app", True),
    ("*/app", "team/x/app", False),
    ("app-?", "app-1", True),
    ("app-?", "app-12", False),
    ("a.b", "axb", False),          # `.` is literal
    ("a.b", "a.b", True),
    ("team/**/app", "team/x/y/app", True),
])
def test_glob(glob, name, expected):
    assert (compile_glob(glob).fullmatch(name) is not None) is expected


def test_union_of_names_prefix_glob():
    flt = build(["a/one"], prefix="team/", glob="lib/*")
    assert flt.matches("a/one") and flt.matches("team/x/y") and flt.matches("lib/z")
    assert not flt.matches("a/two") and not flt.matches("lib/z/w")


def test_empty_filter_matches_everything_and_patterns_only_of_names_matches_nothing():
    assert build().everything and build().matches("x/y")
    named = build(["a/b"])
    assert not named.patterns_only().matches("a/b")


def test_spec_round_trip():
    flt = build(["b/b", "a/a"], prefix="p", glob="g/*")
    assert from_spec(flt.spec()).spec() == {"repositories": ["a/a", "b/b"], "prefix": "p", "glob": "g/*"}


@pytest.mark.parametrize("kwargs, parameter", [
    ({"names": [f"r{i}" for i in range(11)]}, "repository"),
    ({"names": ["UPPER"]}, "repository"),
    ({"names": ["a//b"]}, "repository"),
    ({"names": ["a" * 256]}, "repository"),
    ({"prefix": "p" * 257}, "prefix"),
    ({"glob": "g" * 257}, "glob"),
    ({"glob": "a[b]"}, "glob"),
    ({"glob": "(a|b)"}, "glob"),
    ({"glob": "A*"}, "glob"),
])
def test_limits(kwargs, parameter):
    with pytest.raises(RepoFilterError) as err:
        build(max_names=10, **kwargs)
    assert err.value.parameter == parameter


def test_hostile_glob_is_linear():
    import time
    pattern = compile_glob("a*" * 100 + "b")
    started = time.perf_counter()
    assert pattern.fullmatch("a" * 255) is None
    assert time.perf_counter() - started < 0.5
