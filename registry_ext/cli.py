"""The `registry-ext` command: serve, feed-waiter, reindex, check, check-config, purge-uploads, gc,
retention, mirror-diff, webhooks.

Errors a user can act on (a bad configuration, Redis unreachable, a busy
port, a data directory that cannot be written, redis-server missing) end
in one line on stderr, ``registry-ext: error: <what failed>; <what to do>``,
and exit 2 (usage or configuration) or 1 (operational), never a traceback.
"""
from __future__ import annotations

import json
import sys

import click
import redis

from registry_ext import __version__
from registry_ext.cli_settings import USAGE, CliError, cli_settings
from registry_ext.config import ConfigError


class Commands(click.Group):
    """The command group; turns operational failures of any command into a :class:`CliError`.

    ``mirror-diff`` is imported only when asked for (or listed by ``--help``): its HTTP client
    (requests, urllib3) and engine would otherwise be loaded, and held in memory, by ``serve``'s
    master and every worker (issue #11, item 2).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "mirror-diff"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "mirror-diff":
            from registry_ext.mirror.command import mirror_diff

            return mirror_diff
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise CliError(f"{exc}; fix the configuration (registry-ext check-config shows it)", USAGE) from None
        except redis.RedisError as exc:
            url = ctx.meta.get("redis_url", "the configured URL")
            raise CliError(f"Redis at {url} failed: {_first_line(exc)}; check that redis-server runs there "
                           "and --redis-url (redis.url) names it") from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise CliError(f"{exc.strerror or exc}{where}; check the path and its permissions") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")


def _registry(settings):
    """The registry on an existing storage root; a root that is not a registry's is one error line."""
    from registry_ext.services import build_registry
    from registry_ext.services.root import RootRefused

    try:
        return build_registry(settings)
    except RootRefused as exc:
        raise CliError(str(exc)) from None


_common = [
    click.option("--config", type=click.Path(dir_okay=False), help="TOML configuration file."),
    click.option("--data-dir", help="Storage root (storage.root)."),
    click.option("--redis-url", help="Redis URL (redis.url); empty: serve runs a private redis-server."),
    click.option("--key-prefix", help="Redis key prefix (redis.key_prefix)."),
]


def common(func):
    for option in reversed(_common):
        func = option(func)
    return func


@click.group(cls=Commands)
@click.version_option(__version__, prog_name="registry-ext")
def main() -> None:
    """An OCI Distribution v1.1 registry with enriched tag listings."""


@main.command()
@common
@click.option("--host", help="Listen address (server.host).")
@click.option("--port", type=int, help="Listen port (server.port).")
@click.option("--workers", type=int, help="Gunicorn worker processes (server.workers).")
@click.option("--threads", type=int, help="Threads per worker (server.threads).")
@click.option("--access-log", help="Access log file ('-' for stderr).")
@click.option("--htpasswd", type=click.Path(dir_okay=False),
              help="Require HTTP Basic logins against this htpasswd file (htpasswd -B); without auth.rules "
                   "in the config, every user in it may pull, push and delete (docs/auth.md).")
def serve(config, data_dir, redis_url, key_prefix, host, port, workers, threads, access_log, htpasswd) -> None:
    """Run the registry under gunicorn."""
    from registry_ext.serve import StartupError, serve as run, with_htpasswd
    from registry_ext.services.root import RootRefused

    settings = cli_settings(config, data_dir, redis_url, key_prefix, host=host, port=port, workers=workers,
                         threads=threads)
    if htpasswd:
        settings = with_htpasswd(settings, htpasswd)
    try:
        run(settings, access_log)
    except (StartupError, RootRefused) as exc:
        raise CliError(str(exc)) from None


@main.command("feed-waiter")
@common
def feed_waiter(config, data_dir, redis_url, key_prefix) -> None:
    """Hold the update feed's long-polls for the workers (behind nginx, feed.wait_offload)."""
    from registry_ext.waiter.server import main as run

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if not settings.redis.url:
        raise click.UsageError("feed-waiter needs --redis-url (or redis.url); `serve` starts it itself")
    run(settings)


@main.command()
@common
def reindex(config, data_dir, redis_url, key_prefix) -> None:
    """Rebuild the Redis index from storage."""
    from registry_ext.services.feed_build import FeedBuilder
    from registry_ext.services.reindex import reindex as run

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if not settings.redis.url:
        raise CliError("reindex needs --redis-url (or redis.url); for the embedded Redis "
                       "of a running serve give unix:///ABSOLUTE/DATA-DIR/redis/redis.sock", USAGE)
    reg = _registry(settings)
    counts = run(reg.storage, reg.index)
    reg.index.meta.mark(reg.index.meta.status().run_id)  # the index is complete for this Redis
    # a Redis without the update feed gets it rebuilt from the tag history too (a no-op otherwise)
    FeedBuilder(reg.storage, reg.index, reg.feed, tuple(settings.webhooks.endpoints)).run()
    click.echo(json.dumps(counts))


@main.command()
@common
@click.option("--repair", is_flag=True, help="Fix what is found (storage is the source of truth).")
def check(config, data_dir, redis_url, key_prefix, repair) -> None:
    """Report drift between storage and the index; exit 1 when anything was found and not repaired."""
    from registry_ext.services.check import check as run

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if not settings.redis.url:
        raise CliError("check needs --redis-url (or redis.url); for the embedded Redis "
                       "of a running serve give unix:///ABSOLUTE/DATA-DIR/redis/redis.sock", USAGE)
    reg = _registry(settings)
    report = run(reg.storage, reg.index, repair=repair)
    click.echo(json.dumps(report.to_json(), indent=2))
    if any(not finding.repaired for finding in report.findings):
        sys.exit(1)


@main.command("check-config")
@common
def check_config(config, data_dir, redis_url, key_prefix) -> None:
    """Validate the configuration and print it (remote passwords and the S3 secret key masked)."""
    import dataclasses

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if settings.storage.driver == "s3":  # a missing bucket or refused credentials now, not at the first push
        _check_bucket(settings)
    shown = dataclasses.asdict(settings)
    for remote in shown["mirror"]["remotes"].values():  # printed configs end up in tickets and logs
        if remote.get("password"):
            remote["password"] = "********"
    if shown["storage"]["s3"].get("secret_key"):
        shown["storage"]["s3"]["secret_key"] = "********"
    click.echo(json.dumps(shown, indent=2))


def _check_bucket(settings) -> None:
    from registry_ext.config import ConfigError
    from registry_ext.storage.driver.base import DriverError
    from registry_ext.storage.driver.s3 import S3Driver
    from registry_ext.storage.driver.s3_settings import s3_options

    try:
        S3Driver(s3_options(settings.storage.s3, ConfigError)).check()
    except DriverError as exc:
        raise CliError(f"storage.s3: {exc.detail}") from None


@main.command("purge-uploads")
@common
@click.option("--older-than", type=int, default=86400, show_default=True, help="Seconds.")
def purge_uploads(config, data_dir, redis_url, key_prefix, older_than) -> None:
    """Remove upload sessions started more than --older-than seconds ago."""
    from registry_ext.index import open_index
    from registry_ext.services.root import RootRefused, claim_root
    from registry_ext.services.storage_setup import open_configured_storage

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    index = open_index(settings.redis.url, settings.redis.key_prefix) if settings.storage.driver == "s3" else None
    store = open_configured_storage(settings, index)
    try:
        claim_root(store, None, create=False)
    except RootRefused as exc:
        raise CliError(str(exc)) from None
    click.echo(f"removed {store.uploads.purge(older_than)} upload sessions")


@main.command()
@common
@click.option("--dry-run", is_flag=True, help="Print what would be removed, with sizes; change nothing.")
@click.option("--grace-period", type=click.IntRange(0, 365 * 86_400),
              help="Seconds: keep what was touched more recently (gc.grace_period_seconds).")
def gc(config, data_dir, redis_url, key_prefix, dry_run, grace_period) -> None:
    """Apply retention.rules, then remove blob links and blobs nothing references (docs/gc.md);
    print a JSON summary."""
    from registry_ext import failpoints
    from registry_ext.index.gc_state import GcState
    from registry_ext.services.gc import GarbageCollector
    from registry_ext.services import mirror_evict
    from registry_ext.services import retention as retention_rules
    from registry_ext.services.gc_schedule import LeaseLost, run_gc
    from registry_ext.tag_rules import parse_retention

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if not settings.redis.url:
        raise CliError("gc needs --redis-url (or redis.url) for its lock; for the embedded Redis "
                       "of a running serve give unix:///ABSOLUTE/DATA-DIR/redis/redis.sock", USAGE)
    failpoints.configure(settings.testing.failpoints_file)
    reg = _registry(settings)
    grace = settings.gc.grace_period_seconds if grace_period is None else grace_period
    rules = parse_retention(settings.retention.rules) if settings.storage.delete_enabled else ()
    evicting = mirror_evict.configured(settings.proxy.upstreams) if settings.storage.delete_enabled else []
    if dry_run:
        if rules or evicting:  # what retention would delete first; the blobs it frees go in the run after it
            click.echo("\n".join(retention_rules.report_lines(mirror_evict.full_plan(reg, rules, evicting))))
        report = GarbageCollector(reg.storage, grace).collect(dry_run=True)
        for kind, repo, digest, size in report.items:
            click.echo(f"would remove {kind} {repo + ' ' if repo else ''}{digest} {size}")
    else:
        state = GcState(reg.index.client, reg.index.keys, settings.gc.lock_ttl_seconds * 1000)
        try:
            found = run_gc(reg.storage, state, grace, wait_s=settings.gc.lock_ttl_seconds + 5,
                           before=mirror_evict.scheduled(reg, rules, evicting), index=reg.index)
        except LeaseLost:
            raise CliError("the gc lock expired half-way (this process stalled?); run gc again") from None
        if found is None:
            raise CliError("another gc run holds the lock (a scheduled run in serve, or another host); "
                           "try again when it has finished")
        report = found
    click.echo(json.dumps(report.to_json(), indent=2))


@main.command()
@common
@click.option("--dry-run", is_flag=True, help="Print what would be deleted and why; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the outcome as JSON.")
def retention(config, data_dir, redis_url, key_prefix, dry_run, as_json) -> None:
    """Delete what retention.rules and the mirror's cache limits (proxy.upstreams: cache_max_bytes,
    cache_expire_days) call for, printing the plan (what, why, sizes) first."""
    from registry_ext.services import mirror_evict
    from registry_ext.services import retention as rules
    from registry_ext.tag_rules import parse_retention

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if not settings.redis.url:
        raise CliError("retention needs --redis-url (or redis.url); for the embedded Redis "
                       "of a running serve give unix:///ABSOLUTE/DATA-DIR/redis/redis.sock", USAGE)
    evicting = mirror_evict.configured(settings.proxy.upstreams)
    if not settings.retention.rules and not evicting:
        raise CliError("no retention.rules in the configuration (nor mirror cache limits); nothing to plan "
                       "(docs/retention.md)", USAGE)
    if not dry_run and not settings.storage.delete_enabled:
        raise CliError("storage.delete_enabled is false; enable deletes or use --dry-run", USAGE)
    reg = _registry(settings)
    planned = mirror_evict.full_plan(reg, parse_retention(settings.retention.rules), evicting)
    if as_json:
        click.echo(json.dumps(planned.to_json(), indent=2))
    else:
        click.echo("\n".join(rules.report_lines(planned)))
    if dry_run:
        return
    outcome = rules.apply(reg, planned)
    if as_json:
        click.echo(json.dumps(outcome.to_json(), indent=2))
    else:
        click.echo(f"deleted {len(outcome.deleted)}, skipped {len(outcome.skipped)}")
        for item, why in outcome.skipped:
            click.echo(f"skipped {item.kind} {item.repository} {item.target}: {why}")


@main.group()
def webhooks() -> None:
    """Webhook deliveries: pending counts, dead letters, requeueing them."""


def _hook_stores(config, data_dir, redis_url, key_prefix, endpoint):
    from registry_ext.index import open_index
    from registry_ext.index.hooks import HookStore

    settings = cli_settings(config, data_dir, redis_url, key_prefix)
    if not settings.redis.url:
        raise click.UsageError("webhooks needs --redis-url (or redis.url); with the embedded Redis use "
                               "unix://<data-dir>/redis/redis.sock while serve runs")
    names = sorted(settings.webhooks.endpoints)
    if endpoint is not None and endpoint not in names:
        raise click.UsageError(f"no endpoint {endpoint!r} in webhooks.endpoints (configured: {names})")
    index = open_index(settings.redis.url, settings.redis.key_prefix, settings.feed)
    return {name: HookStore(index.client, index.keys, name) for name in names if endpoint in (None, name)}


@webhooks.command("status")
@common
def webhooks_status(config, data_dir, redis_url, key_prefix) -> None:
    """Pending deliveries and dead letters per configured endpoint (JSON)."""
    stores = _hook_stores(config, data_dir, redis_url, key_prefix, None)
    click.echo(json.dumps({name: {"pending": store.pending(), "dead_letters": store.dead_count()}
                           for name, store in stores.items()}, indent=2))


@webhooks.command("dead-letters")
@common
@click.option("--endpoint", help="Only this endpoint.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
def webhooks_dead(config, data_dir, redis_url, key_prefix, endpoint, limit) -> None:
    """Deliveries that failed every attempt, newest first: one JSON object a line, with the last error."""
    for name, store in _hook_stores(config, data_dir, redis_url, key_prefix, endpoint).items():
        for letter in store.dead_letters(limit):
            letter["event"] = json.loads(letter["event"]) if letter.get("event") else None
            click.echo(json.dumps({"endpoint": name, **letter}))


@webhooks.command("requeue")
@common
@click.option("--endpoint", required=True, help="The endpoint whose dead letters are tried again.")
def webhooks_requeue(config, data_dir, redis_url, key_prefix, endpoint) -> None:
    """Queue an endpoint's dead letters for delivery again (attempts counted from zero)."""
    store = _hook_stores(config, data_dir, redis_url, key_prefix, endpoint)[endpoint]
    click.echo(f"requeued {store.requeue_dead()} dead letters of {endpoint}")



if __name__ == "__main__":
    sys.exit(main())
