"""storage/object/repos.py: the repository records of storage/repos.py through a driver.

Each test runs on the filesystem driver and on a real S3 server, and the
records are compared byte for byte with what the filesystem store writes
for the same calls: both trees are one format.
"""
from __future__ import annotations

import threading
import time

import pytest

from registry_ext.index.leases import LeaseBusy
from registry_ext.oci.digest import Digest
from registry_ext.storage import history
from registry_ext.storage.history import HistoryEvent, decode, encode
from registry_ext.storage.object import NotSupportedOnObjectStorage, keys
from registry_ext.storage.object.repos import ObjectRepoStore
from registry_ext.storage.repos import ManifestRecord, RepoStore, TagRecord
from tests.storage_object.conftest import fs_tree, store_locks, tree

D = [Digest("sha256", c * 64) for c in "abcdef"]
BIG = Digest("sha512", "0f" * 64)
MT = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def repos(driver, locks) -> ObjectRepoStore:
    return ObjectRepoStore(driver, locks)


def both(repos: ObjectRepoStore, layout) -> list:
    """The object store and a filesystem store, to make the same calls on."""
    return [repos, RepoStore(layout)]


def manifest(digest: Digest, pushed_at: int = 1_700_000_000_123) -> ManifestRecord:
    return ManifestRecord(str(digest), MT, 1234, pushed_at)


def test_links_manifests_and_tags_round_trip_in_the_filesystem_format(repos, layout):
    for store in both(repos, layout):
        for digest in (D[0], D[1], BIG):
            store.link_blob("team/app", digest)
        store.put_manifest("team/app", manifest(D[2]), D[2])
        store.put_manifest("team/app", manifest(BIG, 5), BIG)
        store.put_tag("team/app", TagRecord("v1", str(D[2]), 10, 20))
        store.put_tag("team/app", TagRecord("latest", str(BIG), 30, 40))
        store.record_history("team/app", HistoryEvent("v1", str(D[2]), 99, "created", MT, 1234))
    assert tree(repos.driver, keys.REPOS) == fs_tree(layout, "repos")

    assert repos.has_blob("team/app", D[0]) and not repos.has_blob("team/app", D[3])
    assert sorted(d for d, _t in repos.blob_links("team/app")) == sorted([D[0], D[1], BIG])
    assert all(abs(t - time.time()) < 120 for _d, t in repos.blob_links("team/app"))
    assert repos.manifest("team/app", D[2]) == manifest(D[2])
    assert repos.manifest("team/app", D[3]) is None
    assert repos.manifest_digests("team/app") == [D[2], BIG]
    assert list(repos.manifests("team/app")) == [manifest(D[2]), manifest(BIG, 5)]
    assert repos.tag("team/app", "v1") == TagRecord("v1", str(D[2]), 10, 20)
    assert repos.tag("team/app", "nope") is None
    assert [t.tag for t in repos.tags("team/app")] == ["latest", "v1"]
    assert repos.history("team/app", "v1") == [HistoryEvent("v1", str(D[2]), 99, "created", MT, 1234)]

    for store in both(repos, layout):
        assert store.unlink_blob("team/app", D[1]) is True
        assert store.unlink_blob("team/app", D[1]) is False
        assert store.delete_manifest("team/app", BIG) is True
        assert store.delete_manifest("team/app", BIG) is False
        assert store.delete_tag("team/app", "latest") is True
        assert store.delete_tag("team/app", "latest") is False
    assert tree(repos.driver, keys.REPOS) == fs_tree(layout, "repos")
    assert not repos.has_blob("team/app", D[1])
    assert repos.manifest_digests("team/app") == [D[2]]
    assert [t.tag for t in repos.tags("team/app")] == ["v1"]


def test_a_repository_never_written_is_empty(repos):
    assert not repos.exists("ghost")
    assert list(repos.names()) == []
    assert list(repos.blob_links("ghost")) == [] and repos.manifest_digests("ghost") == []
    assert list(repos.manifests("ghost")) == [] and list(repos.tags("ghost")) == []
    assert repos.tags_pointing_at("ghost", str(D[0])) == []
    assert repos.history("ghost", "v1") == [] and repos.last_history("ghost", "v1") is None
    assert repos.history_tags("ghost") == []


def test_names_are_nested_and_parent_folders_are_not_repositories(repos, layout):
    for store in both(repos, layout):
        store.link_blob("a", D[0])
        store.put_tag("a/b/c", TagRecord("v1", str(D[1]), 1, 1))
        store.put_manifest("x/y", manifest(D[2]), D[2])
        store.link_blob("x/y/z/w", D[3])
        store.record_history("only/history", HistoryEvent("t", str(D[0]), 1, "created", MT, 1))
    expected = ["a", "a/b/c", "x/y", "x/y/z/w"]
    assert list(repos.names()) == expected
    assert sorted(RepoStore(layout).names()) == expected
    assert [repos.exists(n) for n in ("a", "a/b", "a/b/c", "x", "x/y", "x/y/z", "only/history")] == [
        True, False, True, False, True, False, False]


def test_tags_pointing_at_reads_every_tag_file(repos, layout):
    target = str(D[0])
    for store in both(repos, layout):
        for index in range(12):
            store.put_tag("app", TagRecord(f"t{index:02d}", target if index % 3 == 0 else str(D[index % 2 + 1]),
                                           index, index))
    expected = ["t00", "t03", "t06", "t09"]
    assert repos.tags_pointing_at("app", target) == expected == RepoStore(layout).tags_pointing_at("app", target)
    assert repos.tags_pointing_at("app", str(D[5])) == []
    repos.put_tag("one", TagRecord("only", target, 1, 1))
    assert repos.tags_pointing_at("one", target) == ["only"]


def test_without_a_guard_gc_of_links_is_refused(repos):
    repos.link_blob("app", D[0])
    with pytest.raises(NotSupportedOnObjectStorage):
        repos.take_blob_link("app", D[0], time.time())
    assert repos.has_blob("app", D[0])


# -- locks ---------------------------------------------------------------------------------------------
def test_lock_serialises_threads_and_hosts(driver, redis_server, lock_prefix):
    """Two stores with their own leases stand for two hosts; three threads each: never two inside."""
    hosts = [ObjectRepoStore(driver, store_locks(redis_server, lock_prefix)) for _ in range(2)]
    inside, overlaps, done = [0], [0], []

    def work(store: ObjectRepoStore) -> None:
        for _ in range(8):
            with store.lock("x") as held:
                assert held is None
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0.002)
                inside[0] -= 1
        done.append(1)

    threads = [threading.Thread(target=work, args=(hosts[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(done) == 6 and overlaps[0] == 0


def test_the_held_lease_is_available_while_locked(repos):
    assert repos.held("x") is None
    with repos.lock("x"):
        lease = repos.held("x")
        assert lease is not None and repos.locks.still_held(lease)
        assert repos.held("y") is None
    assert repos.held("x") is None and not repos.locks.still_held(lease)


def test_try_lock_while_held_is_false(driver, repos, redis_server, lock_prefix):
    other_host = ObjectRepoStore(driver, store_locks(redis_server, lock_prefix))
    answers = []
    with repos.lock("x"):
        with other_host.try_lock("x") as locked:
            answers.append(locked)
        thread = threading.Thread(target=lambda: answers.append(_try(repos, "x")))
        thread.start()
        thread.join(10)
        answers.append(_try(other_host, "other"))  # another repository is free
    answers.append(_try(other_host, "x"))  # free again
    assert answers == [False, False, True, True]


def test_lock_held_elsewhere_past_the_wait_raises(driver, repos, redis_server, lock_prefix):
    impatient = ObjectRepoStore(driver, store_locks(redis_server, lock_prefix, wait_s=0.2))
    with repos.lock("x"):
        with pytest.raises(LeaseBusy):
            with impatient.lock("x"):
                pass
    with impatient.lock("x"):
        assert impatient.held("x") is not None


def _try(store: ObjectRepoStore, name: str) -> bool:
    with store.try_lock(name) as locked:
        if locked:
            assert store.held(name) is not None
        return locked


# -- tag history ---------------------------------------------------------------------------------------
def events(count: int, start: int = 1_700_000_000_000) -> list[HistoryEvent]:
    """Events with repeated times, a clock that steps back, and deletes without a media type."""
    out = []
    at = start
    for index in range(count):
        at += [0, 7, 1000, -5][index % 4]
        kind = ["created", "moved", "moved", "deleted"][index % 4]
        out.append(HistoryEvent("v1", str(D[index % 3]), at, kind, "" if kind == "deleted" else MT, index + 1))
    return out


def test_history_rolls_segments_and_reads_like_the_filesystem(repos, layout, monkeypatch):
    monkeypatch.setattr(history, "SEGMENT_BYTES", 1000)
    monkeypatch.setattr(history, "BLOCK", 97)
    stored = [[store.record_history("team/app", event) for event in events(40)] for store in both(repos, layout)]
    assert stored[0] == stored[1]
    assert tree(repos.driver, keys.REPOS) == fs_tree(layout, "repos")
    log = repos.tag_history("team/app", "v1")
    newest = log.newest_segment()
    assert newest >= 3
    for segment in range(newest):
        assert 1000 <= repos.driver.stat(log.path(segment)).size < 1200  # closed at the bound, plus a line
    assert repos.history("team/app", "v1") == stored[0]
    assert repos.last_history("team/app", "v1") == stored[0][-1]
    assert repos.history_tags("team/app") == ["v1"]
    fs_log = RepoStore(layout).tag_history("team/app", "v1")
    assert list(log.backwards()) == list(fs_log.backwards())
    for position, _event in list(fs_log.backwards())[::7]:
        assert log.is_line_start(position)
        assert list(log.backwards(position)) == list(fs_log.backwards(position))
    assert not log.is_line_start((0, 1)) and not log.is_line_start((newest + 5, 0))
    for ms in sorted({e.at for e in stored[0]} | {e.at + 1 for e in stored[0]} | {0}):
        assert log.seek_time(ms) == fs_log.seek_time(ms)
        assert [e for _p, e in log.backwards(log.seek_time(ms))] == [e for e in stored[0][::-1] if e.at < ms]


def test_history_torn_tail_and_damage_are_handled_like_the_filesystem(repos, monkeypatch):
    """A torn line cannot come from an object write, but a copied-in tree may hold one."""
    monkeypatch.setattr(history, "SEGMENT_BYTES", 1000)
    stored = [repos.record_history("app", event) for event in events(4)]  # one segment
    key = repos.tag_history("app", "v1").path(0)
    whole = repos.driver.get_content(key)
    repos.driver.put_content(key, whole + encode(stored[0])[:40])
    assert repos.history("app", "v1") == stored and repos.last_history("app", "v1") == stored[-1]
    assert [d.torn for d in repos.tag_history("app", "v1").damaged()] == [True]
    again = repos.record_history("app", events(5)[-1])
    assert repos.driver.get_content(key) == whole + encode(again)
    lines = repos.driver.get_content(key).split(b"\n")
    lines[2] = b"garbage"
    repos.driver.put_content(key, b"\n".join(lines))
    log = repos.tag_history("app", "v1")
    assert [(d.segment, d.torn) for d in log.damaged()] == [(0, False)]
    log.repair({0})
    assert repos.tag_history("app", "v1").damaged() == []
    assert repos.history("app", "v1") == stored[:2] + stored[3:] + [again]
    assert all(decode("v1", line) for line in repos.driver.get_content(key).split(b"\n")[:-1])


def test_history_append_sees_what_another_host_appended(driver, redis_server, lock_prefix):
    """Each append reads the newest segment afresh: two hosts alternating lose no event."""
    hosts = [ObjectRepoStore(driver, store_locks(redis_server, lock_prefix)) for _ in range(2)]
    stored = []
    for index, event in enumerate(events(12)):
        with hosts[index % 2].lock("app"):
            stored.append(hosts[index % 2].record_history("app", event))
    assert hosts[0].history("app", "v1") == hosts[1].history("app", "v1") == stored
