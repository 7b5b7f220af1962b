"""A bucket that does not exist, or credentials S3 refuses, are reported at start-up by ``check-config``
and ``serve`` in one line naming the key to fix, never at the first push and never as a traceback."""
from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from registry_ext.cli import main
from tests.support.e2e_server import cli_path
from tests.support.s3_hosts import s3_config
from tests.support.servers import free_port

CASES = {
    "missing bucket": ({"bucket": "no-such-bucket-here"}, "bucket 'no-such-bucket-here' does not exist"),
    "wrong secret": ({"secret_key": "not-the-secret"}, "access to bucket"),
}


@pytest.fixture(params=list(CASES))
def bad_config(request, tmp_path, s3_server, s3_bucket):
    override, message = dict(CASES[request.param][0]), CASES[request.param][1]
    bucket = override.pop("bucket", s3_bucket)
    return s3_config(tmp_path / "bad.toml", s3_server, bucket, **override), message


def test_check_config_reports_it(bad_config):
    path, message = bad_config
    result = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.startswith("registry-ext: error: storage.s3: ") and message in result.output, \
        result.output


def test_serve_refuses_to_start(bad_config, tmp_path, redis_server):
    path, message = bad_config
    proc = subprocess.run([cli_path(), "serve", "--config", str(path), "--port", str(free_port()),
                           "--data-dir", str(tmp_path / "scratch"), "--redis-url", redis_server],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert message in proc.stderr, proc.stderr[-2000:]
