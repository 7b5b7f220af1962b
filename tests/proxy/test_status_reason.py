"""proxy/status.py's safe_reason: what the web UI shows of an upstream error carries no secret."""
from __future__ import annotations

from registry_ext.proxy.config import parse_upstream
from registry_ext.proxy.status import REASON_MAX, safe_reason

UP = parse_upstream("hub", {"hosts": ["docker.io"], "urls": ["https://registry-1.docker.io"],
                            "username": "robot-user", "password": "s3cr3t-pass"})


def test_urls_keep_scheme_host_and_path_only():
    reason = ("blob redirect target failed (HTTPSConnectionPool: https://user:pw@cdn.example:8443/blobs/ab"
              "?X-Amz-Signature=deadbeef&token=t0k#frag) and http://[::1]:5000/v2/?a=b")
    assert safe_reason(reason, UP) == ("blob redirect target failed (HTTPSConnectionPool: "
                                       "https://cdn.example:8443/blobs/ab) and http://[::1]:5000/v2/")


def test_credentials_and_authorization_values_are_masked():
    reason = ("token service said: bad credentials robot-user/s3cr3t-pass; sent Bearer abc.def-ghi and "
              "basic Zm9vOmJhcg==")
    assert safe_reason(reason, UP) == "token service said: bad credentials ***/***; sent Bearer *** and basic ***"


def test_control_characters_go_and_long_reasons_are_cut():
    assert safe_reason("a\r\nb\x00c", UP) == "a b c"
    cut = safe_reason("x" * 1000, UP)
    assert len(cut) == REASON_MAX and cut.endswith("…")
