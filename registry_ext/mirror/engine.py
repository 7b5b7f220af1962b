"""Run a comparison: read both sides of each repository pair, resolve signature subjects, diff.

Nothing raises out of :func:`compare`: a side that fails becomes an error
in its repository's entry (and exit code 2), never a traceback.
"""
from __future__ import annotations

import concurrent.futures
import time
from typing import Callable

from registry_ext.errors import RegistryError
from registry_ext.mirror.diff import Listing, Report, diff_repo, subjects_to_resolve
from registry_ext.mirror.remote import RemoteError
from registry_ext.mirror.sides import Side

RepoProgress = Callable[[int, int, str], None]  # (done, total, repo)


def compare(a: Side, b: Side, repos: list[tuple[str, str]] | None, *, untagged: bool = False,
            progress: RepoProgress | None = None) -> Report:
    """Compare ``repos`` (pairs of names on A and B); None: every repository of either catalog."""
    started = time.monotonic()
    report = Report(a.name, b.name)
    if repos is None:
        try:
            names = sorted(set(a.catalog()) | set(b.catalog()))
        except (RemoteError, RegistryError) as exc:
            report.errors.append(f"catalog: {exc}")
            report.seconds = time.monotonic() - started
            return report
        repos = [(n, n) for n in names]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for done, (repo_a, repo_b) in enumerate(repos, 1):
            fa = pool.submit(read_side, a, repo_a, untagged)
            fb = pool.submit(read_side, b, repo_b, untagged)
            report.repos.append(diff_repo(fa.result(), fb.result()))
            if progress:
                progress(done, len(repos), repo_a)
    report.seconds = time.monotonic() - started
    return report


def read_side(side: Side, repo: str, untagged: bool) -> Listing:
    """One side's listing, with signature subjects resolved; errors recorded, not raised."""
    start = side.requests
    try:
        listing = side.list(repo, untagged)
        if listing.error is None and not listing.missing:
            wanted = subjects_to_resolve(listing)
            if wanted:
                try:
                    listing.manifests |= side.has_manifests(repo, wanted)
                except (RemoteError, RegistryError) as exc:
                    listing.partial.append(f"signature subjects not checked: {exc}")
        listing.requests = side.requests - start
    except (RemoteError, RegistryError) as exc:
        listing = Listing(repo, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a report, never a traceback
        listing = Listing(repo, error=f"unexpected {type(exc).__name__}: {exc}")
    return listing
