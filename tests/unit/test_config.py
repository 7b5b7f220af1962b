"""Configuration: defaults, TOML, explicit env keys, and errors for anything unknown."""
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
