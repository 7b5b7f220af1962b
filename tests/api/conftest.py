"""Fixtures of the API tests (plain helpers are in tests/support/)."""
from __future__ import annotations

import pytest


@pytest.fixture
def clock(monkeypatch):
    """Replace the registry's clock by a counter we control (ms since the epoch)."""
    state = {"now": 1_700_000_000_000, "step": 1000}

    def now_ms():
        state["now"] += state["step"]
        return state["now"]

    monkeypatch.setattr("registry_ext.services.manifests.now_ms", now_ms)
    return state
