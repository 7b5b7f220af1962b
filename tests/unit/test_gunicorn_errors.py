"""gunicorn's own refusals (before the app) are written as OCI JSON by the worker hook."""
from __future__ import annotations

import json
import signal
import socket

from gunicorn import util

from registry_ext import gunicorn_setup
from registry_ext.config import load_settings


def test_write_oci_error_sends_the_envelope():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gunicorn_setup.write_oci_error(ours, 431, "Request Header Fields Too Large", "limit <b>" + "x" * 1000)
        ours.shutdown(socket.SHUT_WR)
        data = theirs.recv(65536)
    head, _sep, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/json" in head and b"Content-Length: %d" % len(body) in head
    error = json.loads(body)["errors"][0]
    assert error["code"] == "UNSUPPORTED" and error["message"] == "request header fields too large"
    assert error["detail"]["source"] == "gunicorn" and len(error["detail"]["reason"]) == 300


class _Worker:
    """What the hook uses of a gunicorn worker: its SIGTERM handler."""

    def __init__(self):
        self.exits = []

    def handle_exit(self, sig, frame):
        self.exits.append(sig)


def test_both_servers_install_the_hook(monkeypatch):
    monkeypatch.setattr(util, "write_error", util.write_error)  # restored after the test
    previous = signal.getsignal(signal.SIGTERM)
    closed = []
    monkeypatch.setattr("registry_ext.services.feed_wait.close_all", lambda: closed.append(True))
    assert gunicorn_setup.options(load_settings(environ={}))["post_worker_init"] is gunicorn_setup.post_worker_init
    worker = _Worker()
    try:
        gunicorn_setup.post_worker_init(worker)
        assert util.write_error is gunicorn_setup.write_oci_error
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # what a stop delivers
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert worker.exits == [signal.SIGTERM] and closed == [True]  # gunicorn stops, waiting long-polls answer
