"""Webhooks against a real HTTP receiver: signed, filtered, retried with backoff through failures and
hangs, dead letters (and requeued), redirects and loopback refused, state surviving a restart of the
delivering process. Through `registry-ext serve`: tests/e2e/test_feed_workers.py."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry_ext import create_app
from registry_ext.cli import main
from registry_ext.config import load_settings
from tests.support.oci_client import make_image
from tests.support.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def hook_app(settings, url: str, **endpoint):
    """An app with one endpoint `ci`, its settings in a TOML file (the CLI reads the same)."""
    table = {"url": url, "allow_private": True, "timeout": 1, "backoff_seconds": 0.1, "backoff_max_seconds": 0.4,
             **endpoint}
    config = Path(settings.storage.root).parent / "registry.toml"
    config.write_text(f'[storage]\nroot = "{settings.storage.root}"\n'
                      f'[redis]\nurl = "{settings.redis.url}"\nkey_prefix = "{settings.redis.key_prefix}"\n'
                      f'[webhooks.endpoints.ci]\n'
                      + "".join(f"{k} = {json.dumps(v) if not isinstance(v, dict) else _table(v)}\n"
                                for k, v in table.items()))
    app = create_app(load_settings(config, environ={}))
    app.config["CONFIG_FILE"] = str(config)
    return app


def _table(values: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"


def cli(app, *args) -> str:
    out = CliRunner().invoke(main, ["webhooks", *args, "--config", app.config["CONFIG_FILE"]])
    assert out.exit_code == 0, out.output
    return out.output


def deliver_until(app, predicate, timeout: float = 20.0) -> None:
    dispatcher = app.extensions["webhooks"].start()
    try:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "webhook deliveries did not finish"
            time.sleep(0.05)
    finally:
        dispatcher.stop()


def test_deliveries_are_signed_and_filtered(settings, receiver):
    app = hook_app(settings, receiver.url + "?src=reg", secret="s3cret", repositories=["hook/*"],
                   actions=["pushed", "moved"], headers={"Authorization": "Bearer t0k"})
    client = app.test_client()
    app.extensions["webhooks"].stores["ci"].ensure_group()
    made = make_image(client, "hook/app", tag="1")
    make_image(client, "other/app", tag="1")
    assert client.delete("/v2/hook/app/manifests/1").status_code == 202  # deletes are not wanted
    deliver_until(app, lambda: len(receiver.received) >= 1)
    time.sleep(0.3)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/hook?src=reg" and got.headers["authorization"] == "Bearer t0k"
    assert got.headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(b"s3cret", got.headers["x-regext-timestamp"].encode() + b"." + got.body,
                                    hashlib.sha256).hexdigest()
    assert got.headers["x-regext-signature"] == expected
    doc = json.loads(got.body)
    assert doc["id"] == got.headers["x-regext-delivery"]
    assert [(e["repository"], e["action"], e["digest"]) for e in doc["events"]] == [("hook/app", "pushed",
                                                                                      made["manifest"])]


def test_failures_and_hangs_are_retried_with_backoff_until_delivered(settings, receiver):
    receiver.script = ["500", "hang", "200"]
    app = hook_app(settings, receiver.url, timeout=0.5)
    app.extensions["webhooks"].stores["ci"].ensure_group()
    make_image(app.test_client(), "retry/app", tag="1")
    deliver_until(app, lambda: any(r.answered == "200" for r in receiver.received))
    attempts = receiver.wait_for(3)
    assert [r.answered for r in attempts] == ["500", "hang", "200"]
    assert len({r.headers["x-regext-delivery"] for r in attempts}) == 1
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.5 + 0.2  # backoff 0.1 s, then the 0.5 s timeout and 0.2 s
    assert json.loads(cli(app, "status")) == {"ci": {"pending": 0, "dead_letters": 0}}
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'registry_webhook_deliveries_total{endpoint="ci",outcome="failed"} 2.0' in metrics
    assert 'registry_webhook_deliveries_total{endpoint="ci",outcome="delivered"} 1.0' in metrics
    assert 'registry_webhook_pending{endpoint="ci"} 0.0' in metrics


def test_dead_letters_after_the_last_attempt_and_requeue(settings, receiver):
    receiver.default = "500"
    app = hook_app(settings, receiver.url, max_attempts=2)
    app.extensions["webhooks"].stores["ci"].ensure_group()
    made = make_image(app.test_client(), "dead/app", tag="1")
    deliver_until(app, lambda: json.loads(cli(app, "status"))["ci"]["dead_letters"] == 1)
    letters = [json.loads(line) for line in cli(app, "dead-letters").splitlines()]
    assert len(letters) == 1 and letters[0]["attempts"] == 2 and letters[0]["error"] == "HTTP 500"
    assert letters[0]["event"]["digest"] == made["manifest"]
    assert 'registry_webhook_dead_letters{endpoint="ci"} 1.0' in app.test_client().get("/metrics").get_data(
        as_text=True)
    receiver.default = "200"
    assert "requeued 1" in cli(app, "requeue", "--endpoint", "ci")
    deliver_until(app, lambda: receiver.received and receiver.received[-1].answered == "200")
    assert json.loads(cli(app, "status")) == {"ci": {"pending": 0, "dead_letters": 0}}


def test_redirects_are_not_followed(settings, receiver):
    receiver.default = "302"
    app = hook_app(settings, receiver.url, max_attempts=1)
    app.extensions["webhooks"].stores["ci"].ensure_group()
    make_image(app.test_client(), "redir/app", tag="1")
    deliver_until(app, lambda: json.loads(cli(app, "status"))["ci"]["dead_letters"] == 1)
    assert [r.path for r in receiver.received] == ["/hook"]
    assert "redirects are not followed" in json.loads(cli(app, "dead-letters"))["error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.1"])
def test_private_addresses_are_refused_unless_allowed(settings, receiver, host):
    port = receiver.server.server_port
    app = hook_app(settings, f"http://{host}:{port}/hook", allow_private=False, max_attempts=1, timeout=0.5)
    app.extensions["webhooks"].stores["ci"].ensure_group()
    make_image(app.test_client(), "ssrf/app", tag="1")
    deliver_until(app, lambda: json.loads(cli(app, "status"))["ci"]["dead_letters"] == 1)
    assert receiver.received == []
    assert "not a public address" in json.loads(cli(app, "dead-letters"))["error"]


def test_delivery_state_survives_the_delivering_process(settings, receiver):
    """One process queues and claims a delivery and dies mid-attempt; another delivers it after the lease."""
    receiver.default = "200"
    first = hook_app(settings, receiver.url, timeout=0.2)
    first.extensions["webhooks"].stores["ci"].ensure_group()
    make_image(first.test_client(), "survive/app", tag="1")
    dead_worker = first.extensions["webhooks"]
    store = dead_worker.stores["ci"]
    dead_worker._queue(dead_worker.endpoints[0], store, store.take(dead_worker.consumer, 10, 100))
    claimed = store.claim(store.due_ids(10)[0], 200 + 5000)  # the attempt it never finished
    assert claimed is not None and receiver.received == []

    second = hook_app(settings, receiver.url, timeout=0.2)  # a restarted worker
    started = time.monotonic()
    deliver_until(second, lambda: len(receiver.received) == 1)
    assert time.monotonic() - started > 4  # not before the lease ended
    assert receiver.received[0].headers["x-regext-delivery"] == claimed.id


def test_an_entry_read_but_never_queued_is_reclaimed(settings, receiver, monkeypatch):
    monkeypatch.setattr("registry_ext.index.hooks.RECLAIM_MS", 200)
    app = hook_app(settings, receiver.url)
    dispatcher = app.extensions["webhooks"]
    store = dispatcher.stores["ci"]
    store.ensure_group()
    make_image(app.test_client(), "lost/app", tag="1")
    assert len(store.take("a-worker-that-died", 10, 100)) == 1  # read, never queued nor acknowledged
    time.sleep(0.3)
    deliver_until(app, lambda: len(receiver.received) == 1)
