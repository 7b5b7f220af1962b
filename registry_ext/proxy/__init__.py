"""The pull-through mirror of many upstreams (issue #13), selected by ``ns`` or a path prefix.

A request for ``library/ubuntu`` with ``?ns=docker.io`` (containerd's hosts.toml mirrors), or for
``docker.io/library/ubuntu`` (podman/CRI-O/skopeo ``registries.conf`` mirror locations), is routed to
the configured upstream whose ``hosts`` name ``docker.io``; an ``ns`` naming no configured upstream is
refused and never dialled. What is fetched is stored, exact bytes, in the local repository
``<upstream name>/<upstream repository>`` so two upstreams never collide, and is first-class content:
listings, history, the catalog and gc see it like pushed content.

Modules:
- ``source``: what the blob fill reads from an upstream, and the upstream errors every module shares;
- ``routing``: request → route (upstream, upstream repository, local repository), or an OCI error;
- ``upstream``: one upstream's HTTP client (failover across its URLs, retries, rate and concurrency limits);
- ``manifests``: manifests and tag lists by TTL, HEAD first, exact bytes;
- ``blobfill``: one upstream fetch per blob across workers and hosts, streamed while it is stored;
- ``fill_writer``: a fill's writer thread (temp file, verify, commit) and the sweep of dead fills' temp files.
"""
