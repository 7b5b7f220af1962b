"""Finish writes that changed storage but not the index: replay the journal.

A journal entry (storage/journal.py) names a repository and the tags and
manifests a write was changing. Replaying it re-derives exactly those index
entries from storage, so it is idempotent and safe to repeat: whatever the
write got done before it died is what the index ends up saying. A tag's
history gets the event the dead write did not append, so history, tag
file and index agree too. The feed events the index changes stage (and
any the dead write staged but did not copy) are then copied to the
update feed (index/feed.py), in the repository's order.

Entries naming tags or manifests are replayed under the repository lock,
taken without waiting: a held lock means the write is still running (or
another process is replaying), and the entry is left for a later sweep.
"""
from __future__ import annotations

import logging

from registry_ext.clock import now_ms
from registry_ext.index import Index
from registry_ext.oci.digest import parse_digest
from registry_ext.services.reindex import Unreadable, manifest_entry
from registry_ext.storage import HistoryEvent, Intent, Storage, TagRecord

log = logging.getLogger(__name__)

TORN_ENTRY_AGE_SECONDS = 60  # an unreadable entry younger than this may still be being written


class Reconciler:
    def __init__(self, storage: Storage, index: Index):
        self.storage = storage
        self.index = index

    def sweep(self) -> int:
        """Replay every entry whose write is over; return how many were replayed.

        Raises:
            redis.RedisError: the index is unreachable (entries stay for the next sweep).
        """
        replayed = 0
        for path, intent in self.storage.journal.entries():
            if intent is None:
                self._drop_torn(path)
            elif self._replay_entry(path, intent):
                replayed += 1
                log.warning("replayed an unfinished write in %s: tags %s, manifests %s",
                            intent.repo, list(intent.tags), list(intent.manifests))
        return replayed

    def _replay_entry(self, path, intent: Intent) -> bool:
        """Replay and close one entry; False when its write still runs or another process took it."""
        if not (intent.tags or intent.manifests):
            self.replay(intent)  # catalog only: idempotent, needs no lock
            self.storage.journal.close(path)
            return True
        with self.storage.repos.try_lock(intent.repo) as locked:
            if not locked or not self.storage.journal.exists(path):
                return False
            self.replay(intent)
            self.storage.journal.close(path)
            return True

    def replay(self, intent: Intent) -> None:
        """Make the index say what storage says about the intent's objects."""
        for digest in intent.manifests:
            self.sync_manifest(intent.repo, digest)
        for tag in intent.tags:
            self.sync_tag(intent.repo, tag)
        if self.storage.repos.exists(intent.repo):
            self.index.write.add_repo(intent.repo)
        if intent.tags or intent.manifests:
            self.index.feed.publish(intent.repo)

    def sync_manifest(self, name: str, digest: str) -> None:
        """Index the manifest if its link and bytes are on storage, else forget it; then sync its tags.

        Its tags are those storage names (the tag files pointing at it) and those the
        index names (which may point elsewhere on storage by now): each is made to say
        what its tag file says. Called under the repository lock.
        """
        record = self.storage.repos.manifest(name, parse_digest(digest))
        try:
            indexed = manifest_entry(self.storage, record) if record is not None else None
        except Unreadable:
            indexed = None
        tags = sorted(set(self.index.read.digest_tags(name, digest))
                      | set(self.storage.repos.tags_pointing_at(name, digest)))
        if indexed is None:
            self.index.write.delete_manifest(name, digest)
        else:
            self.index.write.put_manifest(name, digest, indexed.entry, children=indexed.children)
        for tag in tags:
            self.sync_tag(name, tag)

    def sync_tag(self, name: str, tag: str) -> None:
        """Point the index's tag where the tag file points, or drop it; complete its history."""
        record = self.storage.repos.tag(name, tag)
        manifest = self.storage.repos.manifest(name, parse_digest(record.digest)) if record else None
        try:
            indexed = manifest_entry(self.storage, manifest) if manifest is not None else None
        except Unreadable:
            indexed = None
        entry = indexed.entry if indexed is not None else None
        if record is None or indexed is None:
            self.index.write.delete_tag(name, tag)
        else:
            self.index.write.put_manifest(name, record.digest, indexed.entry,
                                          [(tag, record.created_at, record.updated_at)], indexed.children)
        self._complete_history(name, tag, record, entry)

    def _complete_history(self, name: str, tag: str, record: TagRecord | None, entry: dict | None) -> None:
        """Append the event a write died before appending (the tag file is already the truth)."""
        repos = self.storage.repos
        last = repos.last_history(name, tag)  # the newest line only, however long the history
        live = last is not None and last.event != "deleted"
        if record is None and live:
            repos.record_history(name, HistoryEvent(tag, last.digest, now_ms(), "deleted",
                                                    last.media_type, last.size))
        elif record is not None and entry is not None and (not live or last.digest != record.digest):
            repos.record_history(name, HistoryEvent(tag, record.digest, record.updated_at,
                                                    "moved" if live else "created",
                                                    entry["mediaType"], entry["size"]))

    def _drop_torn(self, path) -> None:
        """An entry with no readable content came from a write killed before any storage change."""
        age = self.storage.journal.age_ms(path)
        if age is not None and age > TORN_ENTRY_AGE_SECONDS * 1000:
            self.storage.journal.close(path)
