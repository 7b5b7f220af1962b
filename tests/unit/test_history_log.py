"""storage/history.py against a naive reading of the same files.

Small blocks and segments (module constants, patched per test) put block
edges, segment edges and torn lines everywhere; every read is compared
with what reading the whole files front to back gives.
"""
from __future__ import annotations

import random

import pytest

from registry_ext.storage import history
from registry_ext.storage.history import HistoryEvent, TagHistory, decode, encode
from registry_ext.storage.layout import Layout

DIGESTS = ["sha256:" + c * 64 for c in "abcd"]


@pytest.fixture
def log(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "BLOCK", 97)  # smaller than most lines: lines span blocks
    monkeypatch.setattr(history, "PROBE", 50)
    monkeypatch.setattr(history, "SEGMENT_BYTES", 1000)
    (tmp_path / "tmp").mkdir()
    return TagHistory(Layout(tmp_path), "team/app", "v1")


def fill(log: TagHistory, count: int, seed: int) -> list[HistoryEvent]:
    rng = random.Random(seed)
    at = 1_700_000_000_000
    stored = []
    for _ in range(count):
        at += rng.choice([0, 0, 1, 7, 1000, -5])  # repeats, and a clock that steps back
        event = HistoryEvent("v1", rng.choice(DIGESTS), at, rng.choice(["created", "moved", "deleted"]),
                             "application/vnd.oci.image.manifest.v1+json", rng.randrange(1, 10**rng.randrange(1, 8)))
        stored.append(log.append(event))
    return stored


def naive(log: TagHistory) -> list[tuple[tuple[int, int], HistoryEvent | None]]:
    """Every complete line of every segment with its position, newest first."""
    out = []
    segment = 0
    while log.path(segment).exists():
        data, offset = log.path(segment).read_bytes(), 0
        for line in data.split(b"\n")[:-1]:
            out.append(((segment, offset), decode("v1", line)))
            offset += len(line) + 1
        segment += 1
    return out[::-1]


def test_appends_roll_segments_and_keep_time_monotonic(log):
    stored = fill(log, 120, seed=1)
    assert log.newest_segment() >= 10
    for segment in range(log.newest_segment()):
        assert 1000 <= log.path(segment).stat().st_size < 1000 + 200  # closed at the bound, plus one line
    assert [e.at for e in stored] == sorted(e.at for e in stored)
    assert log.events() == stored
    assert [e for _p, e in naive(log)] == stored[::-1]
    assert log.last() == stored[-1]


def test_backwards_from_every_position_matches_the_files(log):
    fill(log, 80, seed=2)
    lines = naive(log)
    assert list(log.backwards()) == lines
    for index, (pos, _event) in enumerate(lines):
        assert log.is_line_start(pos)
        assert list(log.backwards(pos)) == lines[index + 1:]
        assert log.before(pos) == (lines[index + 1][1] if index + 1 < len(lines) else None)


def test_seek_time_is_exact(log):
    stored = fill(log, 150, seed=3)
    lines = naive(log)
    for ms in sorted({e.at for e in stored} | {e.at + 1 for e in stored} | {0, stored[0].at - 1}):
        older = [event for _pos, event in log.backwards(log.seek_time(ms))]
        assert older == [e for _p, e in lines if e.at < ms]


def test_positions_inside_lines_are_not_line_starts(log):
    fill(log, 20, seed=4)
    (segment, offset), _ = naive(log)[3]
    assert not log.is_line_start((segment, offset + 1))
    assert not log.is_line_start((segment + 99, 0))
    assert not log.is_line_start((segment, 10**9))


def test_a_torn_tail_is_skipped_by_readers_and_cut_by_the_next_append(log):
    stored = fill(log, 30, seed=5)
    newest = log.path(log.newest_segment())
    whole = newest.read_bytes()
    newest.write_bytes(whole + encode(stored[0])[:40])  # a crash mid-append
    assert log.events() == stored and log.last() == stored[-1]
    assert [d.torn for d in log.damaged()] == [True]
    again = log.append(stored[0])
    assert newest.read_bytes() == whole + (encode(again) if len(whole) < 1000 else b"")
    assert log.last() == again and log.events() == stored + [again]
    assert log.damaged() == []


def test_damage_anywhere_is_reported_and_repaired_with_what_can_be_saved(log):
    stored = fill(log, 40, seed=6)
    first = log.path(0)
    lines = first.read_bytes().split(b"\n")
    assert len(lines) >= 7
    lines[2] = lines[2][:30] + lines[3]  # an old torn append: the next event written onto it
    del lines[3]
    lines[4] = b"garbage"  # stored[5]
    first.write_bytes(b"\n".join(lines))
    damage = log.damaged()
    assert [(d.segment, d.torn) for d in damage] == [(0, False), (0, False)]
    log.repair({0})
    assert log.damaged() == []
    assert log.events() == stored[:2] + stored[3:5] + stored[6:]


def test_a_segment_0_from_before_segments_is_read_like_any_other(log, monkeypatch):
    """Histories written before segments are one file of any size: it stays segment 0."""
    monkeypatch.setattr(history, "SEGMENT_BYTES", 10**9)
    stored = fill(log, 200, seed=7)
    monkeypatch.setattr(history, "SEGMENT_BYTES", 1000)
    stored += fill(log, 5, seed=8)
    assert log.newest_segment() == 1
    assert log.events() == stored
    ms = stored[100].at
    assert [e for _p, e in log.backwards(log.seek_time(ms))] == [e for e in stored[::-1] if e.at < ms]
