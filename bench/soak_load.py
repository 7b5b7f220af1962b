"""The soak's load generator: one client process of a few threads driving a mixed registry load.

``bench/soak.py`` (and ``tests/e2e/test_soak.py``) start one or more of these as separate processes:

    python -m bench.soak_load --url http://127.0.0.1:PORT --seconds 60 --threads 4 \\
        --client 0 --clients 2 --out /tmp/load-0.json

Every thread owns a disjoint slice of each repository's tag names (real names from the
official-images history when available), pushes its own manifests and layers, and is the only one
to move or delete them, so it knows what every read of its own things must answer: any other
status is *unexpected*, any other content a *mismatch*. It therefore needs a fresh registry (or at
least ``REPOS`` that nobody else writes to and no earlier run wrote to). The repositories' hot tags
(``latest``, ``stable``) are moved by every thread at once and never deleted. The load: pushes (a
new layer by monolithic, POST+PUT or chunked upload, then a manifest), tag moves, hot-tag pushes,
manifest GET and HEAD by tag and digest, blob GET (whole or a Range), ``tags/list`` with
``n``/``last``, ``_regext/tags`` sorted by semver with ``n``/``last``, ``newer``, digest to tags, tag
history, tag deletes, manifest deletes and cancelled uploads. The output JSON holds per-kind status
counts and latencies, samples of wrong answers, and each thread's final state for
``soak_verify.py``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import threading
import time
import urllib.parse

from bench._common import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, FastClient, check_loopback
REPOS = ("library/php", "library/node", "library/python")
HOT_TAGS = ("latest", "stable")
TAGS_PER_REPO = 48
SAMPLES_KEPT = 20


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_bytes(seed: int, size: int) -> bytes:
    """A layer's bytes, regenerated from its seed when a Range answer is checked."""
    return random.Random(seed).randbytes(size)


CONFIG = canonical({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                    "rootfs": {"type": "layers", "diff_ids": []}})


def repo_tags(count: int = TAGS_PER_REPO) -> dict[str, list[str]]:
    """Tag names per repository: the image's first real tags from the history file, else generated."""
    try:
        from bench.populate import history_tags
        out = {repo: history_tags(count * 2, repo.split("/")[-1]) for repo in REPOS}
    except (OSError, SystemExit, ImportError):
        out = {repo: [f"{m}.{n}.{p}{v}" for m in (1, 2) for n in range(4) for p in range(4)
                      for v in ("", "-alpine")] for repo in REPOS}
    return {repo: [t for t in tags if t not in HOT_TAGS][:count] for repo, tags in out.items()}


class Stats:
    """Status counts and latencies per request kind, wrong answers, shared by a process's threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kinds: dict[str, dict] = {}
        self.samples: list[str] = []
        self.mismatches = 0
        self.unexpected = 0

    def record(self, kind: str, status: int | str, ms: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            entry = self.kinds.setdefault(kind, {"statuses": {}, "ms": [], "unexpected": 0})
            entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
            entry["ms"].append(round(ms, 2))
            if not ok:
                entry["unexpected"] += 1
                self.unexpected += 1
                self._sample(f"{kind}: {status} {detail}")

    def mismatch(self, what: str) -> None:
        with self.lock:
            self.mismatches += 1
            self._sample("mismatch: " + what)

    def _sample(self, text: str) -> None:
        if len(self.samples) < SAMPLES_KEPT:
            self.samples.append(text[:600])


class Failed(Exception):
    """A request failed or answered unexpectedly: the rest of the operation is skipped."""


class Repo:
    """What one thread owns in one repository."""

    def __init__(self, name: str, tags: list[str]):
        self.name = name
        self.tags = tags                       # this thread's tag names
        self.live: dict[str, str] = {}         # own tag -> digest it points at now
        self.ever: set[str] = set()            # own tags ever pushed
        self.manifests: dict[str, bytes] = {}  # own manifests not deleted: digest -> body
        self.pinned: set[str] = set()          # pushed to a hot tag: never deleted
        self.layers: dict[str, tuple[int, int]] = {}  # layer digest -> (seed, size)
        self.hot: dict[str, list[str]] = {t: [] for t in HOT_TAGS}  # digests acknowledged per hot tag
        self.acked = 0

    def state(self) -> dict:
        return {"name": self.name, "live": self.live, "deleted": sorted(self.ever - set(self.live)),
                "manifests": sorted(self.manifests), "layers": self.layers, "hot": self.hot,
                "acked": self.acked}


class LoadThread:
    """One client thread: a keep-alive connection, its repositories, its random sequence."""

    def __init__(self, url: str, gid: int, seed: int, tags: dict[str, list[str]], total: int, stats: Stats):
        self.http = FastClient(url, timeout=60)
        self.gid, self.stats = gid, stats
        self.rnd = random.Random(seed * 1000 + gid)
        self.repos = [Repo(name, names[gid::total]) for name, names in tags.items()]
        self.counter = 0
        self.ops = [(20, self.push), (6, self.move), (3, self.push_hot), (14, self.get_manifest),
                    (7, self.head_manifest), (7, self.get_blob), (5, self.tags_list), (5, self.regext_tags),
                    (3, self.newer), (3, self.digest_tags), (3, self.history), (4, self.delete_tag),
                    (3, self.delete_manifest), (1, self.cancel_upload)]

    # -- plumbing ------------------------------------------------------------------------------
    def call(self, kind: str, method: str, path: str, expect: tuple[int, ...], headers=None, body=None):
        """One request, recorded; raises Failed on an error or an unexpected status."""
        start = time.perf_counter()
        try:
            status, data, hdrs = self.http.request(method, path, headers=headers or {}, body=body)
        except Exception as exc:  # a dropped connection, a timeout: an error of this kind
            self.stats.record(kind, "error", (time.perf_counter() - start) * 1000, False, f"{method} {path} {exc!r}")
            raise Failed from exc
        ok = status in expect
        self.stats.record(kind, status, (time.perf_counter() - start) * 1000, ok,
                          f"{method} {path} -> {data[:300]!r}")
        if not ok:
            raise Failed
        return status, data, hdrs

    def check(self, cond: bool, what: str) -> None:
        if not cond:
            self.stats.mismatch(what)

    def run(self, deadline: float) -> None:
        """Push the config blob everywhere, then random operations until ``deadline``."""
        weights = [w for w, _ in self.ops]
        setup = list(self.repos)
        while time.monotonic() < deadline:
            repo = setup[0] if setup else self.rnd.choice(self.repos)
            op = (lambda r: self.upload(r, CONFIG, "mono")) if setup else self.rnd.choices(self.ops, weights)[0][1]
            try:
                op(repo)
                if setup:
                    setup.pop(0)
            except Failed:
                time.sleep(0.05)
            except Exception as exc:  # noqa: BLE001 - a malformed answer (bad JSON, a missing field): count it, go on
                self.stats.mismatch(f"{getattr(op, '__name__', 'setup')} {repo.name}: {exc!r}")
        self.http.close()

    # -- pushes --------------------------------------------------------------------------------
    def upload(self, repo: Repo, data: bytes, how: str) -> str:
        """Push a blob monolithically (POST ?digest=), as POST + PUT, or in two PATCHes + PUT."""
        digest, base = sha256(data), f"/v2/{repo.name}/blobs/uploads/"
        octet = {"Content-Type": "application/octet-stream"}
        if how == "mono":
            self.call("blob_upload", "POST", f"{base}?digest={digest}", (201,), octet, data)
            return digest
        _, _, hdrs = self.call("blob_upload", "POST", base, (202,), {"Content-Length": "0"})
        location = hdrs["Location"]
        if how == "chunked":
            half = len(data) // 2
            for start, piece in ((0, data[:half]), (half, data[half:])):
                _, _, hdrs = self.call("blob_patch", "PATCH", location, (202,),
                                       dict(octet, **{"Content-Range": f"{start}-{start + len(piece) - 1}"}), piece)
                location = hdrs["Location"]
            data = b""
        sep = "&" if "?" in location else "?"
        self.call("blob_upload", "PUT", f"{location}{sep}digest={digest}", (201,), octet, data)
        return digest

    def new_manifest(self, repo: Repo, tag: str) -> bytes:
        """A new layer (1-16 KiB) and a manifest naming it, with this thread's id and counter."""
        self.counter += 1
        seed, size = self.rnd.getrandbits(48), self.rnd.randint(1024, 16384)
        how = self.rnd.choice(("mono", "mono", "put", "chunked"))
        layer = self.upload(repo, layer_bytes(seed, size), how)
        repo.layers[layer] = (seed, size)
        return canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(CONFIG), "size": len(CONFIG)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": size}],
            "annotations": {"org.opencontainers.image.version": tag, "soak.client": str(self.gid),
                            "soak.n": str(self.counter)}})

    def put_tag(self, repo: Repo, tag: str, body: bytes, kind: str = "manifest_put") -> str:
        digest = sha256(body)
        _, _, hdrs = self.call(kind, "PUT", f"/v2/{repo.name}/manifests/{tag}", (201,),
                               {"Content-Type": OCI_MANIFEST}, body)
        self.check(hdrs.get("Docker-Content-Digest") == digest, f"PUT {repo.name}:{tag} digest header")
        repo.manifests[digest] = body
        repo.acked += 1
        return digest

    def push(self, repo: Repo) -> None:
        tag = self.rnd.choice(repo.tags)
        body = self.new_manifest(repo, tag)
        repo.live[tag] = self.put_tag(repo, tag, body)
        repo.ever.add(tag)

    def move(self, repo: Repo) -> None:
        """Point one of this thread's tags at one of its existing manifests."""
        if not repo.manifests:
            return self.push(repo)
        tag, digest = self.rnd.choice(repo.tags), self.rnd.choice(sorted(repo.manifests))
        repo.live[tag] = self.put_tag(repo, tag, repo.manifests[digest], "tag_move")
        repo.ever.add(tag)

    def push_hot(self, repo: Repo) -> None:
        """Move a hot tag (every thread does) to one of this thread's manifests, which stays pinned."""
        if not repo.manifests:
            return self.push(repo)
        tag, digest = self.rnd.choice(HOT_TAGS), self.rnd.choice(sorted(repo.manifests))
        repo.pinned.add(digest)
        self.put_tag(repo, tag, repo.manifests[digest], "hot_push")
        repo.hot[tag].append(digest)

    # -- reads ---------------------------------------------------------------------------------
    def own_tag(self, repo: Repo) -> str:
        return self.rnd.choice(sorted(repo.ever)) if repo.ever and self.rnd.random() < 0.9 \
            else self.rnd.choice(repo.tags)

    def get_manifest(self, repo: Repo) -> None:
        if repo.manifests and self.rnd.random() < 0.3:
            digest = self.rnd.choice(sorted(repo.manifests))
            _, body, _ = self.call("manifest_get", "GET", f"/v2/{repo.name}/manifests/{digest}", (200,),
                                   {"Accept": OCI_MANIFEST})
            return self.check(body == repo.manifests[digest], f"GET {repo.name}@{digest} body")
        tag = self.own_tag(repo)
        want = repo.live.get(tag)
        _, body, hdrs = self.call("manifest_get", "GET", f"/v2/{repo.name}/manifests/{tag}",
                                  (200,) if want else (404,), {"Accept": OCI_MANIFEST})
        if want:
            self.check(sha256(body) == want == hdrs.get("Docker-Content-Digest"), f"GET {repo.name}:{tag}")

    def head_manifest(self, repo: Repo) -> None:
        tag = self.own_tag(repo)
        want = repo.live.get(tag)
        _, _, hdrs = self.call("manifest_head", "HEAD", f"/v2/{repo.name}/manifests/{tag}",
                               (200,) if want else (404,), {"Accept": OCI_MANIFEST})
        if want:
            self.check(hdrs.get("Docker-Content-Digest") == want, f"HEAD {repo.name}:{tag}")

    def get_blob(self, repo: Repo) -> None:
        if not repo.layers:
            return self.push(repo)
        digest = self.rnd.choice(sorted(repo.layers))
        seed, size = repo.layers[digest]
        path = f"/v2/{repo.name}/blobs/{digest}"
        if self.rnd.random() < 0.4:
            start = self.rnd.randrange(size)
            end = min(size - 1, start + self.rnd.randrange(4096))
            _, body, _ = self.call("blob_get_range", "GET", path, (206,), {"Range": f"bytes={start}-{end}"})
            return self.check(body == layer_bytes(seed, size)[start:end + 1], f"GET {path} range {start}-{end}")
        _, body, _ = self.call("blob_get", "GET", path, (200,))
        self.check(sha256(body) == digest, f"GET {path} bytes")

    def tags_list(self, repo: Repo) -> None:
        last = urllib.parse.quote(self.rnd.choice(repo.tags))
        _, body, _ = self.call("tags_list", "GET", f"/v2/{repo.name}/tags/list?n=50&last={last}", (200,))
        json.loads(body)

    def regext_tags(self, repo: Repo) -> None:
        """Newest versions first, 20 a page, sometimes from after one of this thread's tags."""
        query = "sort=semver&order=desc&n=20"
        if self.rnd.random() < 0.5:
            query += "&last=" + urllib.parse.quote(self.rnd.choice(repo.tags))
        _, body, _ = self.call("regext_tags", "GET", f"/v2/{repo.name}/_regext/tags?{query}", (200,))
        json.loads(body)

    def newer(self, repo: Repo) -> None:
        tag = self.own_tag(repo)
        _, body, _ = self.call("regext_newer", "GET", f"/v2/{repo.name}/_regext/tags/{tag}/newer", (200,))
        self.check(json.loads(body)["digest"] == repo.live.get(tag), f"newer {repo.name}:{tag} digest")

    def digest_tags(self, repo: Repo) -> None:
        """The tags of one of this thread's manifests: exactly its own tags there, plus hot tags."""
        if not repo.manifests:
            return self.push(repo)
        digest = self.rnd.choice(sorted(repo.manifests))
        _, body, _ = self.call("digest_tags", "GET", f"/v2/{repo.name}/_regext/digests/{digest}/tags", (200,))
        tags = set(json.loads(body)["tags"])
        own = {t for t, d in repo.live.items() if d == digest}
        self.check(tags - set(HOT_TAGS) == own, f"digest->tags {repo.name}@{digest}: {sorted(tags)} vs {sorted(own)}")

    def history(self, repo: Repo) -> None:
        """The newest event of one of this thread's tags: its current digest, or its deletion."""
        tag = self.own_tag(repo)
        _, body, _ = self.call("tag_history", "GET", f"/v2/{repo.name}/_oci/tag-history/{tag}?n=1", (200,))
        events = json.loads(body)["manifests"]
        if tag not in repo.ever:
            return self.check(events == [], f"history of never-pushed {repo.name}:{tag}")
        event = events[0]["annotations"]["org.opencontainers.distribution.tag.event"] if events else None
        if tag in repo.live:
            self.check(event == "created" and events[0]["digest"] == repo.live[tag], f"history {repo.name}:{tag}")
        else:
            self.check(event == "deleted", f"history of deleted {repo.name}:{tag}")

    # -- deletes -------------------------------------------------------------------------------
    def delete_tag(self, repo: Repo) -> None:
        if not repo.live:
            return self.push(repo)
        tag = self.rnd.choice(sorted(repo.live))
        self.call("tag_delete", "DELETE", f"/v2/{repo.name}/manifests/{tag}", (202,))
        del repo.live[tag]

    def delete_manifest(self, repo: Repo) -> None:
        """Delete one of this thread's unpinned manifests by digest (its own tags on it go too)."""
        candidates = sorted(set(repo.manifests) - repo.pinned)
        if not candidates:
            return self.push(repo)
        digest = self.rnd.choice(candidates)
        self.call("manifest_delete", "DELETE", f"/v2/{repo.name}/manifests/{digest}", (202,))
        del repo.manifests[digest]
        for tag in [t for t, d in repo.live.items() if d == digest]:
            del repo.live[tag]

    def cancel_upload(self, repo: Repo) -> None:
        _, _, hdrs = self.call("blob_upload", "POST", f"/v2/{repo.name}/blobs/uploads/", (202,),
                               {"Content-Length": "0"})
        self.call("upload_cancel", "DELETE", hdrs["Location"], (204,))


def run(url: str, seconds: float, threads: int, client: int, clients: int, seed: int) -> dict:
    """Run ``threads`` load threads for ``seconds``; return stats and final states (JSON-ready)."""
    url, tags, stats = check_loopback(url), repo_tags(), Stats()
    total = threads * clients
    workers = [LoadThread(url, client * threads + i, seed, tags, total, stats) for i in range(threads)]
    deadline = time.monotonic() + seconds
    started = time.time()
    pool = [threading.Thread(target=w.run, args=(deadline,), daemon=True) for w in workers]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(seconds + 300)  # one operation's requests have 60 s timeouts each
    return {"client": client, "threads": threads, "started": started, "ended": time.time(),
            "stuck_threads": sum(t.is_alive() for t in pool), "kinds": stats.kinds, "samples": stats.samples,
            "unexpected": stats.unexpected, "mismatches": stats.mismatches,
            "states": [repo.state() for w in workers for repo in w.repos]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="registry base URL (loopback only)")
    ap.add_argument("--seconds", type=float, default=60, help="how long to load (default 60)")
    ap.add_argument("--threads", type=int, default=4, help="threads in this process (default 4)")
    ap.add_argument("--client", type=int, default=0, help="this process's index (default 0)")
    ap.add_argument("--clients", type=int, default=1, help="client processes in all (default 1)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--out", required=True, help="where to write the JSON result")
    args = ap.parse_args(argv)
    result = run(args.url, args.seconds, args.threads, args.client, args.clients, args.seed)
    with open(args.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
