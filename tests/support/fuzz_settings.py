"""Example counts of the fuzz tests, scaled by ``REGISTRY_FUZZ_SCALE`` for longer hunts.

CI runs the counts as written (the whole folder in well under a minute);
``REGISTRY_FUZZ_SCALE=50 pytest tests/fuzz`` runs fifty times as many.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings: ``examples`` times the scale, no deadline (Redis and the disk vary)."""
    scale = max(1, int(os.environ.get("REGISTRY_FUZZ_SCALE", "1")))
    return settings(max_examples=examples * scale, deadline=None, suppress_health_check=[HealthCheck.too_slow])
