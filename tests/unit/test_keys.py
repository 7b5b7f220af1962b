"""Every key of one repository hashes to one Redis Cluster slot."""
from redis.crc import key_slot

from registry_ext.index.keys import Keys


def test_repository_keys_share_one_slot():
    rk = Keys("regext").repo("library/nginx")
    keys = [rk.tags, rk.tags_lex, rk.tags_created, rk.tags_updated, rk.tags_semver, rk.tags_sig,
            rk.manifests, rk.manifests_pushed, rk.descriptors,
            rk.digest_tags("sha256:" + "a" * 64), rk.referrers("sha256:" + "b" * 64),
            rk.children("sha256:" + "c" * 64), rk.parents("sha512:" + "d" * 128)]
    assert len({key_slot(k.encode()) for k in keys}) == 1


def test_different_repositories_spread_over_slots():
    keys = Keys("p")
    slots = {key_slot(keys.repo(f"repo{i}").tags.encode()) for i in range(50)}
    assert len(slots) > 1


def test_feed_keys_share_one_slot_apart_from_repositories():
    keys = Keys("regext")
    fk = keys.feed
    feed = [fk.stream, fk.meta, fk.heads, fk.lock, fk.build, fk.watch("0" * 32), fk.hook("ci", "payload"),
            fk.hook("ci", "error"), fk.hook("ci", "dead")]
    assert len({key_slot(k.encode()) for k in feed}) == 1
    rk = keys.repo("library/nginx")
    assert key_slot(rk.events.encode()) == key_slot(rk.events_copied.encode()) == key_slot(rk.tags.encode())


def test_fill_keys_share_the_digests_slot():
    keys = Keys("regext")
    digest = "sha256:" + "e" * 64
    assert key_slot(keys.fill_lease(digest).encode()) == key_slot(keys.fill_state(digest).encode())
    assert keys.fill_lease(digest) == f"regext:fill:{{{digest}}}:lease"
