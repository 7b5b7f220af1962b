"""Helpers of the gc tests on object storage (tests/storage_object/test_object_take.py, tests/s3_api/).

S3 cannot date an object back, so "old" is made by waiting: ``cutoff_now`` is a cutoff after
everything written so far, and returns only once the clock reached the next whole second, so
that what is written after it is dated later even by a HEAD (which dates an object to the
second, truncated). ``Racer`` fires a racing call from another thread at a failpoint, in a fixed
interleaving, as tests/api/test_upload_races.py does from inside the rename.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

from registry_ext import failpoints

GIVE = 0.5  # seconds the racing call gets before the hitting thread goes on


def cutoff_now() -> float:
    """A cutoff after everything written so far; later writes are dated after it, even to the second."""
    now = time.time()
    time.sleep(math.ceil(now + 0.05) - now)
    return now


class Racer:
    """Runs ``action`` in another thread the first time ``point`` is hit while ``when()`` holds, gives it
    ``GIVE`` seconds, and records whether it was still running then (waiting for a lease)."""

    def __init__(self, monkeypatch, point: str, action: Callable[[], Any], when: Callable[[], bool] = lambda: True):
        self.point, self.action, self.when = point, action, when
        self.answers: list[Any] = []
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self.waited = False
        real = failpoints.hit

        def hit(name: str) -> None:
            if name == point and self.thread is None and self.when():
                self.fire()
            real(name)

        monkeypatch.setattr(failpoints, "hit", hit)

    def fire(self) -> None:
        self.thread = threading.Thread(target=self._run, name="racer")
        self.thread.start()
        self.thread.join(GIVE)
        self.waited = self.thread.is_alive()

    def _run(self) -> None:
        try:
            self.answers.append(self.action())
        except BaseException as exc:  # noqa: BLE001 - reported by join
            self.errors.append(exc)

    def join(self) -> list[Any]:
        """The racing call's answer (one), after it finished; raises what it raised."""
        assert self.thread is not None, f"{self.point} was never hit"
        self.thread.join(30)
        assert not self.thread.is_alive(), "the racing call never finished"
        if self.errors:
            raise self.errors[0]
        return self.answers
