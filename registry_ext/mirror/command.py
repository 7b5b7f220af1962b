"""``registry-ext mirror-diff SRC DST``: compare two registries; exit 0 identical, 1 differences, 2 error.

SRC and DST are ``local`` (this registry's storage and index, from
``--config``/``--data-dir``/``--redis-url``), ``http(s)://host[:port]`` or
``host[:port]`` (https, except loopback hosts or with ``--plain-http``).
"""
from __future__ import annotations

import sys
import time

import click

from registry_ext.cli_settings import cli_settings
from registry_ext.errors import RegistryError
from registry_ext.mirror.engine import compare
from registry_ext.mirror.remote import RemoteClient, RemoteError, normalize_url
from registry_ext.mirror.render import RENDERERS
from registry_ext.mirror.sides import LocalSide, RemoteSide
from registry_ext.oci.reference import validate_name


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._last = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        filled = int(30 * done / total) if total else 30
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {what[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 90 + "\r")
            sys.stderr.flush()


def _repo_pairs(repos: tuple[str, ...]) -> list[tuple[str, str]]:
    """``NAME`` or ``NAME=NAME_IN_DST`` -> (A's name, B's name), both valid repository names."""
    pairs = []
    for spec in repos:
        a, _, b = spec.partition("=")
        for name in (a, b or a):
            try:
                validate_name(name)
            except RegistryError:
                _fail(f"--repo {spec!r}: {name!r} is not a valid repository name")
        pairs.append((a, b or a))
    return pairs


def _side(target: str, opts: dict, local_settings, progress) -> LocalSide | RemoteSide:
    if target == "local":
        from registry_ext.services import build_registry
        from registry_ext.services.root import RootRefused

        settings = local_settings()
        try:
            return LocalSide(build_registry(settings), page=settings.limits.page_max)
        except RootRefused as exc:
            _fail(str(exc))
    client = RemoteClient(normalize_url(target, opts["plain_http"]), username=opts["username"],
                          password=opts["password"], realm=opts["realm"], timeout=opts["timeout"],
                          concurrency=opts["concurrency"],
                          verify=not opts["insecure"], retries=opts["retries"])
    return RemoteSide(client, page=opts["page_size"], progress=progress)


@click.command("mirror-diff")
@click.argument("src")
@click.argument("dst")
@click.option("--repo", "repos", multiple=True, metavar="NAME[=NAME_IN_DST]",
              help="Repository to compare (repeatable).")
@click.option("--all", "all_repos", is_flag=True, help="Every repository in either catalog.")
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--untagged", is_flag=True, help="Also compare untagged manifests (sides with the enriched API).")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
@click.option("--plain-http", is_flag=True, help="Use http:// for host[:port] targets.")
@click.option("--username", help="User for Basic or token auth (both remotes).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--realm", metavar="URL", help="Token service that may receive the credentials, when not on "
              "the remote's own origin (e.g. https://auth.docker.io/token).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=30.0, show_default=True,
              help="Seconds per request.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100000), default=10000, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when a TTY).")
@click.option("--config", type=click.Path(dir_okay=False), help="TOML configuration (for `local`).")
@click.option("--data-dir", help="Storage root (for `local`).")
@click.option("--redis-url", help="Redis URL (for `local`).")
@click.option("--key-prefix", help="Redis key prefix (for `local`).")
@click.pass_context
def mirror_diff(ctx, src, dst, repos, all_repos, fmt, output, progress, password_stdin, config, data_dir,
                redis_url, key_prefix, **opts) -> None:
    """Compare repositories of SRC (A) and DST (B): exit 0 identical, 1 differences, 2 error."""
    if bool(repos) == all_repos:
        _fail("give --repo NAME (repeatable) or --all")
    opts["password"] = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if opts["password"] and not opts["username"]:
        _fail("--password-stdin needs --username")
    bar = ProgressBar(sys.stderr.isatty() if progress is None else progress)

    def local_settings():
        return cli_settings(config, data_dir, redis_url, key_prefix)
    try:
        side_a = _side(src, opts, local_settings, bar)
        side_b = _side(dst, opts, local_settings, bar)
    except RemoteError as exc:
        _fail(str(exc))
    except click.ClickException as exc:
        _fail(exc.format_message())
    except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable for `local`
        _fail(f"cannot open a side: {exc}")
    pairs = None if all_repos else _repo_pairs(repos)
    report = compare(side_a, side_b, pairs, untagged=opts["untagged"], progress=lambda d, t, r: bar(r, d, t))
    bar.close()
    text = RENDERERS[fmt](report)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
    else:
        click.echo(text, nl=False)
    ctx.exit(report.exit_code)


def _fail(message: str):
    click.echo(f"mirror-diff: error: {message}", err=True)
    sys.exit(2)
