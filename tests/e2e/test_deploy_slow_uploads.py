"""Slow uploads cannot exhaust gunicorn's threads behind the shipped nginx (deploy/).

nginx streams upload bodies to gunicorn unbuffered, so every upload in
progress holds one of the 2 x 16 gunicorn threads until its last byte. 40
clients trickle chunked PATCH bodies (a few bytes every 0.5 s) from 5
loopback addresses, more than there are threads. nginx's ``limit_conn``
lets 12 in (at most 8 per address) and answers the others 429
TOOMANYREQUESTS in the OCI envelope, so manifest, tag and blob reads keep
being answered (each within a functional 5 s) while the 12 keep trickling.
Without the caps the reads time out (checked when the caps were added).
"""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.support.e2e_deploy import DeployStack
from tests.support.e2e_oci import MANIFEST_V1, describe, fresh, push_blob, push_manifest, start_upload
from tests.support.e2e_slow import SlowUploads

pytestmark = pytest.mark.e2e
REPO = "e2e/slow/app"
SLOW = 40
TOTAL_CAP, PER_CLIENT_CAP = 12, 8  # deploy/nginx.conf limit_conn
READ_TIMEOUT = 5.0  # functional: a starved read waits until the slow uploads end, i.e. forever


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = DeployStack(tmp_path_factory.mktemp("slow")).start()
    yield stack
    stack.stop()


def source(i: int) -> str:
    """The first 10 uploads come from 127.0.0.2 (2 over its cap), the other 30 from 127.0.0.3-7."""
    return "127.0.0.2" if i < 10 else f"127.0.0.{3 + (i - 10) % 5}"


def reads(stack, manifest: str, blob: str) -> list[tuple[str, str]]:
    base = f"{stack.url}/v2/{REPO}"
    return [("GET", f"{stack.url}/v2/"), ("HEAD", f"{base}/manifests/latest"), ("GET", f"{base}/manifests/{manifest}"),
            ("GET", f"{base}/tags/list"), ("GET", f"{base}/_regext/tags?sort=semver"), ("GET", f"{base}/blobs/{blob}")]


def push_image(stack) -> tuple[str, str]:
    config = push_blob(stack.url, REPO, b'{"os":"linux","architecture":"arm64"}')
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "layers": [], "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 37}}).encode()
    resp = push_manifest(stack.url, REPO, "latest", body)
    return resp.headers["Docker-Content-Digest"], config


def check_refused(upload) -> None:
    assert upload.status == 429, upload.answer[:500]
    head = upload.answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"content-type: application/json" in head and b"retry-after: " in head, head
    assert json.loads(upload.body)["errors"][0]["code"] == "TOOMANYREQUESTS", upload.body


def test_slow_uploads_do_not_starve_other_requests(stack):
    manifest, blob = push_image(stack)
    sessions = [start_upload(stack.url, REPO)[len(stack.url):] for _ in range(SLOW)]
    slow = SlowUploads("127.0.0.1", stack.port, interval=0.5)
    try:
        for i, path in enumerate(sessions):
            slow.open(path, source(i))
        refused = slow.wait_answered(SLOW - TOTAL_CAP, timeout=30)
        for upload in refused:
            check_refused(upload)
        running = slow.in_progress()
        assert (len(refused), len(running)) == (SLOW - TOTAL_CAP, TOTAL_CAP), Counter(u.status for u in refused)
        per_source = Counter(u.source for u in running)
        assert per_source["127.0.0.2"] == PER_CLIENT_CAP and max(per_source.values()) <= PER_CLIENT_CAP, per_source

        for _round in range(3):  # reads keep being answered while the uploads trickle on
            for method, url in reads(stack, manifest, blob):
                resp = fresh(method, url, timeout=READ_TIMEOUT)
                assert resp.status_code == 200, describe(resp)
            time.sleep(0.5)
        still = slow.in_progress()
        assert len(still) == TOTAL_CAP and all(u.sent >= 3 * len(slow.chunk) for u in still), \
            [(u.source, u.sent, u.answer[:200]) for u in still]
    finally:
        slow.close()
    assert_upload_slots_come_back(stack)


def assert_upload_slots_come_back(stack) -> None:
    """Once the slow clients are gone, a normal upload gets in (nginx frees a slot when a client leaves)."""
    deadline = time.monotonic() + 30
    while True:
        resp = fresh("POST", f"{stack.url}/v2/{REPO}/blobs/uploads/", headers={"Content-Length": "0"})
        if resp.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert resp.status_code == 202, describe(resp)
    assert push_blob(stack.url, REPO, b"after the slow clients left")
