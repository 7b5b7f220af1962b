"""Users from an htpasswd file of bcrypt entries, as ``htpasswd -B`` writes them.

The file is re-read when it changes (auth/watch.py). Broken lines (no
colon, an empty name, a hash that is not bcrypt, a duplicate name) are
reported with their line number, at start and at each reload, and skipped:
the good entries keep working. The hash itself is never logged.

bcrypt is slow on purpose, so a verified credential is remembered (per
process, at most ``CACHE_SIZE``, forgotten when the file changes) under a
keyed hash of user and password: no password is kept in clear and one
bcrypt is paid per new credential, not per request. Failures are never
cached; an unknown user costs a bcrypt against a dummy hash, so timing does
not tell which users exist. Passwords are cut at 72 bytes, as bcrypt (and
Apache's htpasswd) does.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
import threading

import bcrypt

from registry_ext.auth.watch import WatchedFile

log = logging.getLogger(__name__)
CACHE_SIZE = 1024
MAX_COST = 17  # htpasswd -B -C accepts 4-17; above that one check takes minutes
_BCRYPT = re.compile(rb"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_NAME = re.compile(r"[^\s:]{1,128}")


@dataclasses.dataclass(frozen=True)
class Htpasswd:
    entries: dict[str, bytes]
    problems: list[str]


def parse_htpasswd(data: bytes, origin: str = "htpasswd") -> Htpasswd:
    """Parse ``name:hash`` lines; blank lines and ``#`` comments are skipped."""
    entries: dict[str, bytes] = {}
    problems: list[str] = []
    for number, raw in enumerate(data.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        problem = _problem(line, entries)
        if problem:
            problems.append(f"{origin} line {number}: {problem}; line skipped")
            continue
        name, hashed = line.split(b":", 1)
        entries[name.decode()] = hashed
    return Htpasswd(entries, problems)


def _problem(line: bytes, entries: dict[str, bytes]) -> str | None:
    if b":" not in line:
        return "no colon between user name and hash"
    name, hashed = line.split(b":", 1)
    try:
        text = name.decode()
    except UnicodeDecodeError:
        return "user name is not UTF-8"
    if not _NAME.fullmatch(text):
        return "user name is empty, too long or holds spaces"
    match = _BCRYPT.fullmatch(hashed)
    if match is None:
        return f"the entry for {text!r} is not a bcrypt hash (create it with htpasswd -B)"
    if not 4 <= int(match.group(1)) <= MAX_COST:
        return f"the bcrypt cost of {text!r} is outside 4-{MAX_COST}"
    if text in entries:
        return f"duplicate user {text!r} (the first entry counts)"
    return None


class Users:
    """Checks user names and passwords against the htpasswd file."""

    def __init__(self, path: str):
        self._cache: collections.OrderedDict[bytes, str] = collections.OrderedDict()
        self._cache_lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self.file = WatchedFile(path, lambda data: parse_htpasswd(data, path), on_reload=self._reloaded)
        self._report(self.file.value)
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(self._typical_cost()))

    def cached(self, user: str, password: str) -> bool:
        """True when this credential was verified since the file last changed (no bcrypt)."""
        self.file.get()  # notices a changed file (and empties the cache)
        key = self._cache_key(user, password)
        with self._cache_lock:
            if self._cache.get(key) is None:
                return False
            self._cache.move_to_end(key)
            return True

    def verify(self, user: str, password: str) -> bool:
        """True when the password is the user's: one bcrypt, timing-safe; remembered when right."""
        table = self.file.get()
        hashed = table.entries.get(user)
        ok = bcrypt.checkpw(password.encode()[:72], hashed if hashed is not None else self._dummy)
        if not ok or hashed is None:
            return False
        with self._cache_lock:
            if self.file.value is table:  # not reloaded meanwhile
                self._cache[self._cache_key(user, password)] = user
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return True

    def _cache_key(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, user.encode() + b"\0" + password.encode(), hashlib.sha256).digest()

    def _reloaded(self, table: Htpasswd) -> None:
        with self._cache_lock:
            self._cache.clear()
        self._report(table)

    def _report(self, table: Htpasswd) -> None:
        for problem in table.problems:
            log.warning("%s", problem)
        log.info("htpasswd %s: %d users", self.file.path, len(table.entries))

    def _typical_cost(self) -> int:
        costs = sorted(int(h[4:6]) for h in self.file.value.entries.values())
        return costs[len(costs) // 2] if costs else 5
