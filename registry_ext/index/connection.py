"""Connecting to Redis: one server, Sentinel (high availability) or Cluster.

``redis.url`` forms::

    redis://[user:pass@]host:port/db        rediss://... (TLS)       unix:///abs/path.sock
    redis+sentinel://[user:pass@]host:port[,host:port...]/<master name>[/db][?sentinel_password=...]
    redis+cluster://[user:pass@]host:port[,host:port...]
    (rediss+sentinel:// and rediss+cluster:// use TLS)

With Sentinel the client asks the sentinels for the current master on every
(re)connect, so a failover is followed without a restart: requests fail
(503, Retry-After) for the seconds the promotion takes. With Cluster, every
key of one repository shares its ``{<name>}`` hash tag (index/keys.py), so
each repository's transactions stay inside one slot; cross-repository keys
are written in separate, idempotent steps.

``identity`` names the Redis data set that answers now: the server's
``run_id`` (a new one after a restart or a failover to a replica), or the
run_ids of every primary of a cluster. The index marker (index/meta.py)
records it, and a change makes the registry verify the index against storage.
"""
from __future__ import annotations

import dataclasses
import hashlib
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://", "redis+cluster://",
           "rediss+cluster://")
_OPTIONS = {"decode_responses": True, "socket_timeout": 10, "socket_connect_timeout": 5}


class BadRedisURL(ValueError):
    """redis.url cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class Target:
    kind: str  # "single" | "sentinel" | "cluster"
    hosts: tuple[tuple[str, int], ...]
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def parse(url: str) -> Target | None:
    """The sentinel or cluster target of ``url``; None for a plain redis://, rediss:// or unix:// URL.

    Raises BadRedisURL.
    """
    if not url.startswith(SCHEMES):
        raise BadRedisURL(f"redis.url must start with one of {', '.join(SCHEMES)}")
    if url.startswith("unix://"):
        path = url[len("unix://"):].split("?", 1)[0]
        if not path.startswith("/"):
            raise BadRedisURL(f"redis.url {url!r}: a unix socket needs an absolute path (unix:///abs/path.sock)")
        return None
    scheme = url.split("://", 1)[0]
    if "+" not in scheme:
        return None
    kind = scheme.split("+", 1)[1]
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    hosts = tuple(_host(h, url) for h in hostlist.split(",") if h)
    if not hosts:
        raise BadRedisURL(f"redis.url {url!r}: no host:port")
    path = [p for p in parts.path.split("/") if p]
    query = parse_qs(parts.query)
    master, db = "", 0
    if kind == "sentinel":
        if not path:
            raise BadRedisURL(f"redis.url {url!r}: name the master: redis+sentinel://host:port/<master>")
        master = path[0]
        db = _int(path[1], url) if len(path) > 1 else 0
    elif path:
        raise BadRedisURL(f"redis.url {url!r}: a cluster URL has no path (clusters have one database)")
    return Target(kind, hosts, master, db, unquote(username) or None, unquote(password) or None,
                  (query.get("sentinel_password") or [None])[0], scheme.startswith("rediss"))


def connect(url: str):
    """A client for ``url`` (connections open lazily; safe to create before forking)."""
    target = parse(url)
    if target is None:
        return redis.Redis.from_url(url, health_check_interval=30, **_OPTIONS)
    auth = {"username": target.username, "password": target.password}
    if target.kind == "cluster":
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.hosts], ssl=target.tls,
                            **auth, **_OPTIONS)
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs={"password": target.sentinel_password,
                                                             "socket_timeout": 2, "ssl": target.tls},
                        socket_timeout=_OPTIONS["socket_timeout"])
    return sentinel.master_for(target.master, db=target.db, ssl=target.tls, decode_responses=True,
                               socket_connect_timeout=_OPTIONS["socket_connect_timeout"], **auth)


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def identity(client) -> str:
    """The run_id of the server answering now (of every primary, for a cluster)."""
    if is_cluster(client):
        infos = client.info("server", target_nodes=RedisCluster.PRIMARIES)
        ids = sorted(str(info["run_id"]) for info in infos.values())
        return "cluster-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:40]
    return str(client.info("server")["run_id"])


def _host(text: str, url: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port:
        raise BadRedisURL(f"redis.url {url!r}: {text!r} is not host:port")
    return host.strip("[]"), _int(port, url)


def _int(text: str, url: str) -> int:
    if not text.isdigit():
        raise BadRedisURL(f"redis.url {url!r}: {text!r} is not a number")
    return int(text)
