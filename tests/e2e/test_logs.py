"""What `registry-ext serve` writes to its logs: a UTC time on every access line, and no warning for the
TLS probe podman and skopeo send to a plain-HTTP registry."""
from __future__ import annotations

import datetime
import re
import time

import pytest

from tests.support.e2e_oci import fresh
from tests.support.e2e_skopeo import Skopeo

pytestmark = pytest.mark.e2e
TIME = re.compile(r"^time=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z pid=<\d+> ")


def test_every_access_line_starts_with_an_iso_utc_time_in_milliseconds(registry):
    before = datetime.datetime.now(datetime.timezone.utc)
    paths = ("/v2/", "/v2/logs/app/tags/list", "/healthz")
    for path in paths:
        fresh("GET", registry.url + path)
    # a worker writes its access line after the response has gone: wait for all three lines
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in registry.access_log.read_text().splitlines() if line.strip()]
        if sum(any(f'"GET {p} ' in line for line in lines) for p in paths) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert all(any(f'"GET {p} ' in line for line in lines) for p in paths), lines
    for line in lines:
        stamp = TIME.match(line)
        assert stamp, line
        written = datetime.datetime.fromisoformat(stamp.group(1)).replace(tzinfo=datetime.timezone.utc)
        assert before - datetime.timedelta(seconds=1) <= written <= datetime.datetime.now(datetime.timezone.utc)


def test_the_tls_probe_of_skopeo_is_logged_at_info_with_its_cause(registry, tmp_path):
    """skopeo without --tls-verify=false sends a TLS ClientHello to the plain-HTTP port first; gunicorn
    refuses it ("bare LF as line terminator"). The line is INFO and says why, not a WARNING."""
    result = Skopeo(tmp_path / "skopeo", registry).run("inspect", f"docker://{registry.host}/logs/app:1",
                                                       check=False, timeout=60)
    assert result.returncode != 0 and "server gave HTTP response to HTTPS client" in result.stderr, \
        result.stderr[-2000:]
    deadline = time.monotonic() + 5
    while True:
        errors = registry.stderr_path.read_text(errors="replace")
        probes = [line for line in errors.splitlines() if "bare LF as line terminator" in line]
        if probes or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert probes, errors[-3000:]
    for line in probes:
        assert "[INFO] Invalid request from ip=127.0.0.1" in line, line
        assert "usually a TLS handshake sent to this plain-HTTP port" in line, line
    assert "[WARNING]" not in errors, errors[-3000:]
