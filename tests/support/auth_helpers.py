"""What the access-control tests share: users, rules, an app factory and per-user clients."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import bcrypt

from registry_ext import create_app
from registry_ext.config import Settings, replace
from tests.support.flask_client import BufferedClient

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "robot": "robot-pw", "admin": "admin-pw"}

# Made by `htpasswd -nbB alice 'alice-pass-1'` (apache2-utils 2.4.57, cost 5): the format real files have.
APACHE_LINE = "carol:$2y$05$QmOpMwux.w0SpFq/iEF8iemwfwvjfyDjDe4WndGOsjzaM48fS9yx6"
APACHE_PASSWORD = "alice-pass-1"
# `htpasswd -nbB long <80 x "x">`: Apache's bcrypt uses the first 72 bytes only.
APACHE_LONG_LINE = "long:$2y$05$9VZlXPRzinUk7ZZqxEsDoO.3DmjUo0VF8Kl98HmO5XZleqsOVZvim"

RULES = [
    {"repository": "public/**", "who": ["anonymous"], "actions": ["pull"]},
    {"repository": "ci/app", "who": ["robot"], "actions": ["pull", "push"]},
    {"repository": "secret/**", "who": ["group:ops"], "actions": ["*"]},
    {"repository": "secret/**", "who": ["*"], "actions": []},
    {"repository": "**", "who": ["alice"], "actions": ["*"]},
]
GROUPS = {"ops": ["bob"]}


def bcrypt_line(user: str, password: str, cost: int = 4) -> str:
    """An htpasswd line as `htpasswd -B` writes it ($2y$ prefix)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
    return f"{user}:$2y${hashed[4:]}"


def write_htpasswd(path: Path, users: dict[str, str] = PASSWORDS, extra: str = "") -> Path:
    lines = [bcrypt_line(user, password) for user, password in users.items()]
    lines += [APACHE_LINE, APACHE_LONG_LINE]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def make_app(settings: Settings, tmp_path: Path, scheme: str = "basic", **auth):
    """An app with access control on: htpasswd of PASSWORDS, RULES, GROUPS, audit log in tmp_path."""
    htpasswd = tmp_path / "htpasswd"
    if not htpasswd.exists():
        write_htpasswd(htpasswd)
    values = {"scheme": scheme, "htpasswd": str(htpasswd), "rules": RULES, "groups": GROUPS,
              "catalog": ["admin"], "audit_log": str(tmp_path / "audit.log"), **auth}
    app = create_app(replace(settings, "auth", **values))
    app.test_client_class = BufferedClient
    return app


def basic(user: str, password: str | None = None) -> str:
    password = PASSWORDS[user] if password is None else password
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def client_for(app, authorization: str | None = None, address: str = "127.0.0.1"):
    """A test client sending ``authorization`` (if any) from ``address`` on every request."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if authorization:
        client.environ_base["HTTP_AUTHORIZATION"] = authorization
    return client


def audit_lines(tmp_path: Path) -> list[dict]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def challenge(resp) -> str:
    value = resp.headers.get("WWW-Authenticate")
    assert value, f"no WWW-Authenticate on {resp.status_code}: {resp.get_data()[:300]!r}"
    return value
