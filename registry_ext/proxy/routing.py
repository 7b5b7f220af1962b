"""Which upstream a request is for: ``?ns=<host>``, a ``<host>/`` path prefix, or the default upstream.

Order (first that applies):

1. the name matches ``proxy.local_names``, or its first segment is an upstream's *name* (the local
   cache namespace ``<upstream>/<repository>``): local;
2. ``ns`` given (containerd hosts.toml mirrors send it on every request): it must be a bare host
   name (400 NAME_INVALID for a port, scheme, user info, spaces or path characters); the
   registry's own host name means local; a configured host routes to its upstream; any other
   host is 404 NAME_UNKNOWN and never dialled (closed world);
3. the first path segment is a configured host and more segments follow (podman/CRI-O/skopeo
   ``registries.conf`` mirror ``location = "<mirror>/<host>"``): that upstream, the rest the name;
4. ``proxy.default_upstream`` when set; else local.

A routed request reads and writes the local repository ``<upstream name>/<upstream repository>``,
so two upstreams never collide. An upstream's ``repositories`` globs (matched on the name as the
upstream knows it, ``library/`` added) refuse others with 403 DENIED. Writes through a route are
refused (403 DENIED: the mirror never pushes upstream); writes straight into an upstream's local
namespace are refused too unless its ``allow_push`` is set.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from registry_ext.config import ProxySettings
from registry_ext.errors import ErrorCode, RegistryError
from registry_ext.oci.reference import validate_name
from registry_ext.proxy.config import HOST, Upstream, compile_globs, parse_upstream


@dataclasses.dataclass(frozen=True)
class Route:
    upstream: Upstream
    upstream_repo: str  # the name the upstream knows
    local_repo: str     # where its content is stored here: <upstream name>/<upstream repo>
    namespace: str      # the host the client named (echoed in OCI-Namespace)


class Router:
    """Routes requests by ``proxy`` settings (no I/O: nothing is dialled here)."""

    def __init__(self, settings: ProxySettings):
        self.upstreams = {name: parse_upstream(name, table) for name, table in settings.upstreams.items()}
        self.by_host = {host: up for up in self.upstreams.values() for host in up.hosts}
        self.default = self.upstreams.get(settings.default_upstream) if settings.default_upstream else None
        self.local_globs: tuple[Any, ...] = compile_globs(settings.local_names, "local_names")

    def route(self, name: str, ns: str | None, own_host: str) -> Route | None:
        """The route of a request for ``name`` (None: local).

        Raises:
            RegistryError(NAME_INVALID (bad ns), NAME_UNKNOWN (ns of no upstream), DENIED (repositories))
        """
        if self._local(name):
            return None
        if ns is not None:
            return self._by_ns(name, ns, own_host)
        head, _, rest = name.partition("/")
        upstream = self.by_host.get(head)
        if upstream is not None and rest:
            return self._make(upstream, rest, head)
        if self.default is not None:
            return self._make(self.default, name, self.default.hosts[0])
        return None

    def refuse_write(self, name: str, route: Route | None) -> None:
        """Raises: RegistryError(DENIED) for a write through a route, or into a cache namespace."""
        if route is not None:
            raise RegistryError(ErrorCode.DENIED, {"name": name, "upstream": route.upstream.name},
                                message=f"{name} is mirrored from upstream {route.upstream.name}: pushes and "
                                        "deletes through the mirror are refused")
        upstream = self.upstreams.get(name.partition("/")[0])
        if upstream is not None and not upstream.allow_push:
            raise RegistryError(ErrorCode.DENIED, {"name": name, "upstream": upstream.name},
                                message=f"{upstream.name}/ holds what is mirrored from upstream {upstream.name}; "
                                        "pushes and deletes are refused there (allow_push = false)")

    def _local(self, name: str) -> bool:
        return name.partition("/")[0] in self.upstreams or any(g.fullmatch(name) for g in self.local_globs)

    def _by_ns(self, name: str, ns: str, own_host: str) -> Route | None:
        if not HOST.fullmatch(ns):
            raise RegistryError(ErrorCode.NAME_INVALID, {"ns": ns[:100]},
                                message="ns must be a registry host name (lowercase letters, digits, dots and "
                                        "dashes: no port, scheme, user info, spaces or path)")
        if ns == own_host.rsplit(":", 1)[0].lower():
            return None
        upstream = self.by_host.get(ns)
        if upstream is None:
            raise RegistryError(ErrorCode.NAME_UNKNOWN, {"ns": ns},
                                message=f"ns {ns} is not an upstream of this mirror; it is not contacted")
        return self._make(upstream, name, ns)

    @staticmethod
    def _make(upstream: Upstream, name: str, namespace: str) -> Route:
        upstream_repo = upstream.upstream_repo(name)
        if not upstream.allows(upstream_repo):
            raise RegistryError(ErrorCode.DENIED, {"name": upstream_repo, "upstream": upstream.name},
                                message=f"{upstream_repo} is not mirrored from upstream {upstream.name} "
                                        "(its repositories rules)")
        local_repo = f"{upstream.name}/{upstream_repo}"
        validate_name(local_repo)
        return Route(upstream, upstream_repo, local_repo, namespace)
