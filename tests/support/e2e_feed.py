"""Helpers for the update feed's end-to-end tests: small images, tag operations with the events they
must produce, and a follower that reads the feed with long-polls."""
from __future__ import annotations

import json
import threading
import time

import requests

from tests.support.e2e_oci import CONFIG_V1, MANIFEST_V1, digest_of, expect, fresh, push_blob


def images(base: str, repo: str, count: int) -> list[tuple[bytes, str]]:
    """``count`` manifests of ``repo`` pushed by digest (untagged): (bytes, digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "repo": repo}).encode()
    push_blob(base, repo, config)
    out = []
    for i in range(count):
        body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V1, "layers": [], "annotations": {"i": str(i)},
                           "config": {"mediaType": CONFIG_V1, "digest": digest_of(config),
                                      "size": len(config)}}).encode()
        expect(fresh("PUT", f"{base}/v2/{repo}/manifests/{digest_of(body)}", data=body,
                     headers={"Content-Type": MANIFEST_V1}), 201)
        out.append((body, digest_of(body)))
    return out


def set_tag(base: str, repo: str, tag: str, image: tuple[bytes, str]) -> None:
    expect(fresh("PUT", f"{base}/v2/{repo}/manifests/{tag}", data=image[0],
                 headers={"Content-Type": MANIFEST_V1}), 201)


def delete_tag(base: str, repo: str, tag: str) -> None:
    expect(fresh("DELETE", f"{base}/v2/{repo}/manifests/{tag}"), 202)


def cursor(base: str, **params) -> str:
    return expect(requests.get(f"{base}/v2/_regext/updates", params=params, timeout=30), 200).json()["next"]


def key(event: dict) -> tuple:
    return event["repository"], event["tag"], event["action"], event["digest"], event["previous"]


class Follower:
    """Reads the feed from ``start`` with long-polls in a thread until stopped and caught up."""

    def __init__(self, base: str, start: str, wait: int = 2, **params):
        self.base, self.next, self.wait, self.params = base, start, wait, params
        self.events: list[dict] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Follower":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            while True:
                resp = expect(requests.get(f"{self.base}/v2/_regext/updates", timeout=60,
                                           params=dict(self.params, cursor=self.next, wait=self.wait, n=50)), 200)
                page = resp.json()
                self.events += page["events"]
                self.next = page["next"]
                if self.stopping.is_set() and not page["events"] and not page["more"]:
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish()
            self.error = exc

    def finish(self, timeout: float = 60) -> list[dict]:
        self.stopping.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the feed follower did not catch up"
        if self.error is not None:
            raise self.error
        return self.events


def timed_long_poll(base: str, start: str, wait: int, **params) -> dict:
    """A long-poll in a thread; ``out["at"]`` is when its answer arrived (monotonic)."""
    out: dict = {}

    def run():
        resp = requests.get(f"{base}/v2/_regext/updates", params=dict(params, cursor=start, wait=wait),
                            timeout=wait + 30)
        out["at"] = time.monotonic()
        out["resp"] = resp

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out
