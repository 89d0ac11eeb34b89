"""The ``publisher`` command: a thin shell over the library.

Every command takes ``--config PATH``.  A PublisherError becomes one line on
standard error and exit status 1; logging handlers are set up here and nowhere
else.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click

from publisher import __version__
from publisher.errors import ConfigError, PublisherError

log = logging.getLogger("publisher")

CONFIG_HELP = "Config file (default: config.toml, or $PUBLISHER_CONFIG)."


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("publisher")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("apscheduler").addHandler(handler)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _load(config_path: str, log_level: str | None) -> Any:
    from publisher.config import load_config

    config = load_config(config_path)
    _setup_logging(log_level or config.log.level)
    return config


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Common options, config loading and error handling for every command."""

    @click.option("--config", "config_path", default="config.toml", envvar="PUBLISHER_CONFIG", show_default=True,
                  type=click.Path(dir_okay=False), metavar="PATH", help=CONFIG_HELP)
    @click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
                  help="Override log.level from the config.")
    @wraps(func)
    def wrapper(config_path: str, log_level: str | None, **kwargs: Any) -> Any:
        try:
            config = _load(config_path, log_level.upper() if log_level else None)
            return func(config, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(f"error: {exc.path}: {problem}", err=True)
            sys.exit(1)
        except PublisherError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="publisher")
def main() -> None:
    """Publish a folder of text posts as Atom, RSS and JSON feeds."""


@contextmanager
def _bar(total: int, label: str) -> Iterator[Any]:
    """A progress bar on a terminal for long scans; nothing otherwise."""
    if total < 50 or not sys.stderr.isatty():
        from publisher.sync import no_progress

        with no_progress(total, label) as bar:
            yield bar
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar


@main.command()
@click.option("--force", is_flag=True, help="Rebuild even when nothing seems to have changed.")
@command
def build(config: Any, force: bool) -> None:
    """Scan the posts, render what changed and write the feeds, once.

    Prints each file written, a summary line, and the <link> tags that let
    browsers and feed readers discover the feeds from the site's HTML head.
    """
    from publisher.build import build_once

    report = build_once(config, force=force, progress=_bar)
    for path in report.written:
        click.echo(f"wrote {path}")
    for problem in report.errors:
        click.echo(f"warning: {problem}", err=True)
    click.echo(report.line())
    if report.discovery:
        click.echo("autodiscovery tags for your site's <head>:")
        for tag in report.discovery:
            click.echo(f"  {tag}")


@main.command()
@command
def check(config: Any) -> None:
    """Validate the config and read every post; list every problem.

    Exit status 1 if there is any problem, 0 if all is well.
    """
    from publisher.check import check as run_check

    report = run_check(config)
    for problem in report.problems:
        click.echo(problem)
    if report.problems:
        click.echo(f"{len(report.problems)} problem(s) in {report.posts} post file(s)", err=True)
        sys.exit(1)
    click.echo(f"config OK, {report.posts} post file(s) OK")


@main.command()
@command
def run(config: Any) -> None:
    """Run the daemon: build at start, then on the configured schedule.

    Stops cleanly on SIGTERM or SIGINT (Ctrl-C) after the build in progress.
    """
    from publisher.daemon import Daemon

    Daemon(config).run()


if __name__ == "__main__":  # pragma: no cover
    main()
