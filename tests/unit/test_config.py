"""Configuration: defaults, TOML, explicit env keys, and errors for anything unknown."""
import re

import pytest

from registry_ext.config import ConfigError, load_settings, replace


def test_defaults_need_nothing():
    settings = load_settings(environ={})
    assert settings.redis.url == ""
    assert settings.limits.manifest_max_bytes == 4 * 1024 * 1024
    assert settings.storage.delete_enabled is True


def test_toml_file_then_env_override(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[storage]\nroot = "/srv/a"\n[redis]\nurl = "redis://h:1/0"\n[server]\nworkers = 3\n')
    settings = load_settings(path, environ={"REGISTRY_EXT_DATA_DIR": "/srv/b"})
    assert settings.storage.root == "/srv/b"
    assert settings.redis.url == "redis://h:1/0"
    assert settings.server.workers == 3


def test_command_line_values_beat_environment():
    settings = load_settings(data={"storage": {"root": "/cli"}}, environ={"REGISTRY_EXT_DATA_DIR": "/env"})
    assert settings.storage.root == "/cli"


def test_config_file_named_by_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[redis]\nkey_prefix = "prod"\n')
    assert load_settings(environ={"REGISTRY_EXT_CONFIG": str(path)}).redis.key_prefix == "prod"


@pytest.mark.parametrize("data, message", [
    ({"storage": {"rooot": "/x"}}, "unknown key storage.rooot"),
    ({"stroage": {}}, "unknown section"),
    ({"server": {"port": "eighty"}}, "expected an integer"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"server": {"workers": 0}}, "server.workers"),
    ({"redis": {"key_prefix": "a{b}"}}, "key_prefix"),
    ({"redis": {"url": "http://x"}}, "redis.url"),
    ({"storage": {"delete_enabled": "maybe"}}, "expected true or false"),
    ({"limits": "x"}, "must be a table"),
    ({"redis": {"url": "unix://data/redis.sock"}}, "not an absolute socket path; write unix:///abs/path"),
    ({"server": {"docs_url": "docs/"}}, "server.docs_url"),
    ({"server": {"docs_url": "https://docs.example/registry-ext/docs"}}, "server.docs_url"),  # no trailing /
    ({"server": {"readyz_details": "some"}}, "server.readyz_details"),
    ({"limits": {"upload_idle_seconds": 700, "upload_ttl_seconds": 600}}, "upload_idle_seconds"),
    ({"limits": {"upload_sessions_per_client": 2000}}, "must not exceed limits.upload_sessions_max"),
    ({"limits": {"upload_sessions_max": 0}}, "upload_sessions_max"),
    ({"limits": {"upload_min_rate_bytes": -1}}, "upload_min_rate_bytes"),
    ({"limits": {"upload_min_rate_seconds": 0}}, "upload_min_rate_seconds"),
    ({"limits": {"upload_slow_penalty_seconds": 0}}, "upload_slow_penalty_seconds"),
    ({"mirror": {"max_comparisons": 0}}, "mirror.max_comparisons"),
])
def test_bad_settings_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(data=data, environ={})


def test_string_values_are_coerced():
    settings = load_settings(data={"server": {"port": "8080"}, "storage": {"delete_enabled": "false"}}, environ={})
    assert settings.server.port == 8080
    assert settings.storage.delete_enabled is False


def test_env_key_prefix_is_validated():
    with pytest.raises(ConfigError, match="key_prefix"):
        load_settings(environ={"REGISTRY_EXT_KEY_PREFIX": "a:b"})


def test_unreadable_file_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_replace_revalidates():
    settings = load_settings(environ={})
    assert replace(settings, "redis", url="unix:///tmp/s").redis.url == "unix:///tmp/s"
    with pytest.raises(ConfigError):
        replace(settings, "server", port=0)


@pytest.mark.parametrize("data, message", [
    ({"feed": {"retention_events": 5}}, "feed.retention_events: must be 100-10000000"),
    ({"feed": {"wait_max_seconds": 86400}}, "feed.wait_max_seconds: must be 0-3600"),
    ({"feed": {"wait_offload": "_regext_wait"}}, "feed.wait_offload"),
    ({"feed": {"waiter_listen": "5001"}}, "feed.waiter_listen"),
    ({"feed": {"unknown": 1}}, "unknown key feed.unknown"),
    ({"webhooks": {"endpoints": {"ci": {"url": "ftp://x"}}}}, "webhooks.endpoints.ci: url"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://u:p@x/h"}}}}, "no user:password"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "retries": 3}}}}, "unknown key retries"),
    ({"webhooks": {"endpoints": {"CI": {"url": "https://x"}}}}, "names are lowercase"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "actions": ["tagged"]}}}}, "unknown 'tagged'"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "timeout": 0}}}}, "timeout"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "allow_private": 1}}}}, "allow_private: wrong type"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "headers": {"Host": "y"}}}}}, "'Host' is not allowed"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "headers": {"X-A": "a\nb"}}}}}, "line breaks"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "repositories": ["a[b]"]}}}}, "repositories"),
    ({"webhooks": {"endpoints": {"ci": {"url": "https://x", "backoff_seconds": 10,
                                        "backoff_max_seconds": 5}}}}, "backoff"),
])
def test_feed_and_webhook_settings_are_validated(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(data=data, environ={})


def test_a_full_webhook_endpoint_is_accepted():
    settings = load_settings(data={"webhooks": {"endpoints": {"ci": {
        "url": "https://ci.example/h", "secret": "s", "headers": {"Authorization": "Bearer x"},
        "repositories": ["team/**"], "actions": ["moved"], "timeout": 2.5, "max_attempts": 3,
        "backoff_seconds": 1, "backoff_max_seconds": 30, "allow_private": False}}}}, environ={})
    assert settings.webhooks.endpoints["ci"]["actions"] == ["moved"]


@pytest.mark.parametrize("data, message", [
    ({"gc": {"interval_seconds": 59}}, "gc.interval_seconds: must be 60-31536000"),
    ({"gc": {"grace_period_seconds": -1}}, "gc.grace_period_seconds: must be 0-31536000"),
    ({"gc": {"lock_ttl_seconds": 0}}, "gc.lock_ttl_seconds: must be 1-3600"),
    ({"gc": {"enabled": 1}}, "gc.enabled: expected bool"),
    ({"gc": {"every": 60}}, "unknown key gc.every"),
])
def test_gc_settings_are_validated(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(data=data, environ={})


def test_gc_settings_are_read():
    gc = load_settings(data={"gc": {"enabled": True, "interval_seconds": 3600, "grace_period_seconds": 0}},
                       environ={}).gc
    assert (gc.enabled, gc.interval_seconds, gc.grace_period_seconds, gc.lock_ttl_seconds) == (True, 3600, 0, 30)
