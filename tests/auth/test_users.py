"""The htpasswd file: Apache's bcrypt lines, broken lines reported and skipped, reload without restart,
one bcrypt per new credential."""
from __future__ import annotations

import logging
import os
import time

import pytest

import registry_ext.auth.users as users_module
from registry_ext.config import ConfigError
from tests.support.auth_helpers import (APACHE_PASSWORD, PASSWORDS, basic, bcrypt_line, client_for, make_app,
                                     write_htpasswd)
from tests.support.oci_client import assert_error

BROKEN = "\n".join([
    "no-colon-here",
    ":$2y$04$abcdefghijklmnopqrstuuM1lOqyGt4fFQ5zn8B5ppqbWyqjFBo1W",  # empty name
    "md5user:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/",                   # htpasswd -m
    "shauser:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",                       # htpasswd -s
    "plain:secret",
    "tooexpensive:$2y$18$abcdefghijklmnopqrstuuM1lOqyGt4fFQ5zn8B5ppqbWyqjFBo1W",
    "alice:" + bcrypt_line("x", "shadowed").split(":", 1)[1],          # duplicate: the first one counts
    "# a comment, and a blank line follow",
    "",
])


def touch_later(path) -> None:
    """Give the file a new mtime even within one clock tick."""
    later = time.time_ns() + 2 * 10**9
    os.utime(path, ns=(later, later))


def reload_now(app) -> None:
    app.extensions["auth"].users.file._next_check = 0


def test_apache_bcrypt_lines_work(settings, tmp_path):
    app = make_app(settings, tmp_path)
    assert client_for(app, basic("carol", APACHE_PASSWORD)).get("/v2/").status_code == 200
    long_password = "x" * 80  # htpasswd -B hashed its first 72 bytes
    assert client_for(app, basic("long", long_password)).get("/v2/").status_code == 200
    assert client_for(app, basic("long", "x" * 72)).get("/v2/").status_code == 200
    assert_error(client_for(app, basic("long", "x" * 71)).get("/v2/"), 401, "UNAUTHORIZED")


def test_broken_lines_are_reported_at_start_and_good_entries_work(settings, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="registry_ext.auth")
    write_htpasswd(tmp_path / "htpasswd", extra=BROKEN)
    app = make_app(settings, tmp_path)
    problems = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name.startswith("registry_ext.auth")]
    path = tmp_path / "htpasswd"
    assert problems == [
        f"{path} line 7: no colon between user name and hash; line skipped",
        f"{path} line 8: user name is empty, too long or holds spaces; line skipped",
        f"{path} line 9: the entry for 'md5user' is not a bcrypt hash (create it with htpasswd -B); line skipped",
        f"{path} line 10: the entry for 'shauser' is not a bcrypt hash (create it with htpasswd -B); line skipped",
        f"{path} line 11: the entry for 'plain' is not a bcrypt hash (create it with htpasswd -B); line skipped",
        f"{path} line 12: the bcrypt cost of 'tooexpensive' is outside 4-17; line skipped",
        f"{path} line 13: duplicate user 'alice' (the first entry counts); line skipped",
    ]
    assert "$2y$" not in caplog.text and "HqJZim" not in caplog.text
    assert client_for(app, basic("alice")).get("/v2/").status_code == 200
    assert_error(client_for(app, basic("alice", "shadowed")).get("/v2/"), 401, "UNAUTHORIZED")
    assert_error(client_for(app, basic("plain", "secret")).get("/v2/"), 401, "UNAUTHORIZED")


def test_reload_when_the_file_changes(settings, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="registry_ext.auth")
    app = make_app(settings, tmp_path)
    alice, robot = client_for(app, basic("alice")), client_for(app, basic("robot"))
    assert alice.get("/v2/").status_code == 200 and robot.get("/v2/").status_code == 200
    path = tmp_path / "htpasswd"
    write_htpasswd(path, {"robot": "new-robot-pw", "dave": "dave-pw"}, extra="broken line\n")
    touch_later(path)
    reload_now(app)
    assert client_for(app, basic("dave", "dave-pw")).get("/v2/").status_code == 200
    assert_error(alice.get("/v2/"), 401, "UNAUTHORIZED")   # removed: her cached login is forgotten too
    assert_error(robot.get("/v2/"), 401, "UNAUTHORIZED")   # password changed
    assert client_for(app, basic("robot", "new-robot-pw")).get("/v2/").status_code == 200
    assert f"{path} line 5: no colon between user name and hash; line skipped" in caplog.text
    assert f"reloaded {path}" in caplog.text


def test_a_vanished_file_keeps_the_last_good_users(settings, tmp_path, caplog):
    app = make_app(settings, tmp_path)
    (tmp_path / "htpasswd").unlink()
    reload_now(app)
    assert client_for(app, basic("bob")).get("/v2/").status_code == 200
    assert "cannot reload" in caplog.text


def test_a_missing_file_at_start_is_a_config_error(settings, tmp_path):
    with pytest.raises(ConfigError, match="auth: .*No such file"):
        make_app(settings, tmp_path, htpasswd=str(tmp_path / "missing"))


def test_one_bcrypt_per_new_credential(settings, tmp_path, monkeypatch):
    calls = []
    real = users_module.bcrypt.checkpw
    monkeypatch.setattr(users_module.bcrypt, "checkpw", lambda pw, h: calls.append(1) or real(pw, h))
    app = make_app(settings, tmp_path)
    alice = client_for(app, basic("alice"))
    for _ in range(5):
        assert alice.get("/v2/").status_code == 200
    assert len(calls) == 1
    for _ in range(3):  # failures are never cached: each costs a bcrypt (and counts for the throttle)
        client_for(app, basic("alice", "wrong")).get("/v2/")
    assert len(calls) == 4
    client_for(app, basic("nobody", "x")).get("/v2/")  # an unknown user costs one too (dummy hash)
    assert len(calls) == 5


def test_the_credential_cache_is_bounded_and_keyed(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(users_module, "CACHE_SIZE", 3)
    many = {f"u{i}": f"pw{i}" for i in range(5)}
    write_htpasswd(tmp_path / "htpasswd", {**PASSWORDS, **many})
    app = make_app(settings, tmp_path)
    for user, password in many.items():
        assert client_for(app, basic(user, password)).get("/v2/").status_code == 200
    cache = app.extensions["auth"].users._cache
    assert len(cache) == 3
    assert all(len(key) == 32 and b"pw" not in key for key in cache)  # HMAC-SHA256, no password
