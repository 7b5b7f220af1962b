"""Optional subsystems stay unloaded until configured or used (issue #11, item 2: memory).

Each module costs every process of ``registry-ext serve`` (master and workers) its memory. A fresh
interpreter builds the app as a worker does, against the session's real Redis, answers requests,
and reports which of the optional libraries it loaded.
"""
from __future__ import annotations

import json
import subprocess
import sys

# loaded only by the subsystem named: access control (JWT, bcrypt), mirror-diff's HTTP client, test tools
OPTIONAL = ["jwt", "bcrypt", "cryptography.hazmat.bindings._rust", "requests", "urllib3",
            "registry_ext.mirror.remote", "registry_ext.auth.tokens", "boto3", "botocore", "prometheus_client",
            "hypothesis", "pytest"]

WORKER = """
import json, sys
import registry_ext.cli, registry_ext.serve
from registry_ext.app import create_app
from registry_ext.config import load_settings
settings = load_settings(data=json.loads(sys.argv[1]), environ={})
client = create_app(settings).test_client()
for url in ("/v2/", "/v2/_catalog", "/v2/app/tags/list", "/v2/app/_regext/tags?fields=name"):
    client.get(url)
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def loaded(data: dict) -> list[str]:
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(data), json.dumps(OPTIONAL)],
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_an_open_registry_loads_only_the_metrics_library(tmp_path, redis_server):
    data = {"storage": {"root": str(tmp_path / "data")}, "redis": {"url": redis_server, "key_prefix": "lazy1"}}
    assert loaded(data) == ["prometheus_client"]  # metrics.enabled is true by default


def test_without_metrics_no_optional_library_loads(tmp_path, redis_server):
    data = {"storage": {"root": str(tmp_path / "data")}, "redis": {"url": redis_server, "key_prefix": "lazy0"},
            "metrics": {"enabled": False}}
    assert loaded(data) == []


def test_basic_auth_loads_bcrypt_and_the_token_code_but_no_http_client(tmp_path, redis_server):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:$2b$05$2lq8vA9QxkJ6G7wWfZpKmeC0Q6G3hJQ2Yz1Xq0n3k9vJmQeW1x7G.\n")
    data = {"storage": {"root": str(tmp_path / "data")}, "redis": {"url": redis_server, "key_prefix": "lazy2"},
            "auth": {"scheme": "basic", "htpasswd": str(htpasswd),
                     "rules": [{"repository": "**", "who": ["*"], "actions": ["*"]}]},
            "metrics": {"enabled": False}}
    assert loaded(data) == ["bcrypt", "cryptography.hazmat.bindings._rust", "jwt", "registry_ext.auth.tokens"]
