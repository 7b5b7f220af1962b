"""What every ``registry-ext`` command shares: settings from its options, and its one-line error.

A module of its own so that the commands defined outside ``cli.py``
(``mirror/command.py``) use it without importing ``cli`` (which imports them).
"""
from __future__ import annotations

import click

from registry_ext.config import ConfigError, Settings, load_settings

USAGE, OPERATIONAL = 2, 1


class CliError(click.ClickException):
    """One line on stderr: what failed and what to do."""

    def __init__(self, message: str, exit_code: int = OPERATIONAL):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a class-wide code; ours is per error

    def show(self, file=None) -> None:
        click.echo(f"registry-ext: error: {self.message}", err=True)


def cli_settings(config: str | None, data_dir: str | None, redis_url: str | None, key_prefix: str | None,
                 **server) -> Settings:
    """The configuration file (if any) overridden by the common options and the ``server`` ones given.

    Remembers the Redis URL in the click context, so that a Redis failure
    later in the command names it.
    """
    data: dict = {}
    if data_dir:
        data.setdefault("storage", {})["root"] = data_dir
    if redis_url:
        data.setdefault("redis", {})["url"] = redis_url
    if key_prefix:
        data.setdefault("redis", {})["key_prefix"] = key_prefix
    server = {k: v for k, v in server.items() if v is not None}
    if server:
        data["server"] = server
    try:
        settings = load_settings(config, data=data)
    except ConfigError as exc:
        raise CliError(f"{exc}; fix the configuration or the option", USAGE) from None
    click.get_current_context().meta["redis_url"] = settings.redis.url
    return settings
