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
    from publisher.logsetup import setup_logging

    handler = setup_logging(level)
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
    """Publish a folder of text posts as Atom, RSS and JSON feeds and email digests."""


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


def _newsletter(config: Any) -> Any:
    from publisher.newsletter import Newsletter
    from publisher.state import Store

    store = Store(config.database_url)
    store.migrate()
    return Newsletter(config, store)


def _lists(config: Any, given: tuple[str, ...]) -> list[str]:
    """The lists named with --list, or the only configured list."""
    for name in given:
        config.mailing_list(name)
    if given:
        return list(given)
    if len(config.lists) == 1:
        return list(config.lists)
    known = ", ".join(sorted(config.lists)) or "none configured: add a [lists.NAME] section"
    raise click.UsageError(f"name a list with --list (lists: {known})")


LIST_OPTION = click.option("--list", "lists", multiple=True, metavar="LIST",
                           help="The list (repeatable); default: the only configured list.")


@main.group()
def subscribers() -> None:
    """Manage subscribers: add, remove, list, import and export."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="The subscriber's name, as greetings show it.")
@LIST_OPTION
@click.option("--pending", is_flag=True, help="Add as pending (awaiting confirmation), not active.")
@command
def subscribers_add(config: Any, email: str, name: str | None, lists: tuple[str, ...], pending: bool) -> None:
    """Add EMAIL to a list (or re-activate a pending one).

    An address that unsubscribed, bounced or complained stays that way; re-add
    it with its owner's consent through the subscribe page instead.
    """
    names = _lists(config, lists)
    newsletter = _newsletter(config)
    from publisher.subscribers import Subscribers

    Subscribers(newsletter.store).add(email, name=name, lists=names, status="pending" if pending else "active")
    click.echo(f"{email}: {'pending' if pending else 'active'} on {', '.join(names)}")


@subscribers.command("remove")
@click.argument("email")
@LIST_OPTION
@command
def subscribers_remove(config: Any, email: str, lists: tuple[str, ...]) -> None:
    """Unsubscribe EMAIL from a list (from every list when there are several and none is named).

    The subscriber's history stays, so an import can't silently add them back.
    """
    from publisher.subscribers import Subscribers

    store = _newsletter(config).store
    targets = list(lists) if lists else [None]
    for name in targets:
        Subscribers(store).remove(email, name)
    click.echo(f"{email}: unsubscribed from {', '.join(lists) if lists else 'every list'}")


@subscribers.command("list")
@LIST_OPTION
@click.option("--status", type=click.Choice(["pending", "active", "unsubscribed", "bounced", "complained"]),
              help="Only subscribers with this status.")
@command
def subscribers_list(config: Any, lists: tuple[str, ...], status: str | None) -> None:
    """Print subscribers, one per line: email, list, status, since."""
    from publisher.subscribers import Subscribers

    store = _newsletter(config).store
    for name in list(lists) or [None]:
        for row in Subscribers(store).iter(name, status):
            since = row.status_at.strftime("%Y-%m-%d %H:%M") if row.status_at else ""
            click.echo(f"{row.email}\t{row.list}\t{row.status}\t{since}")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE.csv")
@LIST_OPTION
@command
def subscribers_import(config: Any, csv_file: str, lists: tuple[str, ...]) -> None:
    """Import subscribers from a CSV file with an `email` column (and optionally `name`).

    Reads the file as a stream, reports each bad row with its line number and
    imports the rest.  Never re-activates an unsubscribed, bounced or
    complained address.
    """
    from publisher.subscribers import Subscribers

    store = _newsletter(config).store
    for name in _lists(config, lists):
        report = Subscribers(store).import_csv(csv_file, name)
        for kind, rows, total in (("skipped", report.skipped_rows, report.skipped), ("bad row", report.bad_rows, report.bad)):
            for line, reason in rows:
                click.echo(f"{csv_file}:{line}: {kind}: {reason}", err=True)
            if total > len(rows):
                click.echo(f"{csv_file}: ... and {total - len(rows)} more {kind}(s) not listed", err=True)
        click.echo(report.line())


@subscribers.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False), metavar="FILE.csv")
@click.option("--list", "list_name", metavar="LIST", help="Only this list; default: every list.")
@command
def subscribers_export(config: Any, csv_file: str, list_name: str | None) -> None:
    """Write subscribers to a CSV file: email, name, list, status, status_at."""
    from publisher.subscribers import Subscribers

    if list_name:
        config.mailing_list(list_name)
    count = Subscribers(_newsletter(config).store).export_csv(csv_file, list_name)
    click.echo(f"wrote {count} subscription(s) to {csv_file}")


@subscribers.command("forget")
@click.argument("email")
@click.confirmation_option(prompt="Erase this person everywhere (subscriptions and delivery history)?",
                           help="Don't ask for confirmation.")
@command
def subscribers_forget(config: Any, email: str) -> None:
    """Erase EMAIL everywhere (GDPR), the delivery ledger included.

    Only a salted hash of the address is kept, so that a later import or
    `subscribers add` can't silently add the person back; their own new
    sign-up through the subscribe form can.
    """
    from publisher.forget import forget

    report = forget(_newsletter(config).store, config, email)
    click.echo(report.line())


@main.group()
def digest() -> None:
    """Preview and send a list's digest."""


@digest.command("preview")
@click.argument("list_name", metavar="LIST")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for the files (default: state/preview).")
@click.option("--to", "address", metavar="ADDRESS", help="Also send one test copy to ADDRESS.")
@click.option("--latest", is_flag=True, help="When nothing is new, preview with the list's latest posts instead.")
@command
def digest_preview(config: Any, list_name: str, out_dir: str | None, address: str | None, latest: bool) -> None:
    """Write the next digest's HTML, text and .eml to files and print their paths.

    Records nothing and sends nothing, unless --to sends one test copy (also
    not recorded: the real digest still goes to everyone).
    """
    from pathlib import Path

    newsletter = _newsletter(config)
    folder = Path(out_dir) if out_dir else config.state_dir / "preview"
    for path in newsletter.preview(list_name, folder, latest=latest):
        click.echo(str(path))
    if address:
        newsletter.send_test(list_name, address, latest=latest)
        click.echo(f"sent a test copy to {address}")


@digest.command("send")
@click.argument("list_name", metavar="LIST")
@click.option("--dry-run", is_flag=True, help="Compose and count recipients; store and send nothing.")
@command
def digest_send(config: Any, list_name: str, dry_run: bool) -> None:
    """Compose LIST's digest of the posts new since the last one, and send it now.

    With nothing new, nothing is sent.  Sending resumes where an interrupted
    send stopped; each subscriber gets the digest once.
    """
    newsletter = _newsletter(config)
    if dry_run:
        from publisher.subscribers import Subscribers

        composed = newsletter.composer().preview(list_name)
        count = Subscribers(newsletter.store).count(list_name, "active")
        posts = len(composed.posts) if composed else 0
        click.echo(f"list {list_name}: {posts} post(s), {count} active subscriber(s); dry run, nothing sent")
        return
    with _send_bar() as bar:
        outcome = newsletter.send_now(list_name, progress=bar)
    click.echo(outcome.line())


@contextmanager
def _send_bar() -> Iterator[Any]:
    """A progress bar on a terminal (the sender sets its length once the recipients are counted)."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=1, label="sending", file=sys.stderr, show_pos=True) as bar:
        yield bar


@main.command()
@click.argument("digest_id", metavar="[DIGEST]", type=int, required=False)
@command
def deliveries(config: Any, digest_id: int | None) -> None:
    """Show delivery counts per state for DIGEST (default: the latest digests), and each failure with its reason."""
    from publisher.ledger import Ledger
    from publisher.newsletter import recent_digests

    store = _newsletter(config).store
    ledger = Ledger(store)
    rows = recent_digests(store, digest_id=digest_id)
    if not rows:
        click.echo("no digests yet" if digest_id is None else f"no digest {digest_id}")
        sys.exit(0 if digest_id is None else 1)
    for row in rows:
        counts = ledger.counts(row.id)
        summary = ", ".join(f"{counts.get(state, 0)} {state}" for state in ("sent", "queued", "sending", "deferred", "failed"))
        click.echo(f"digest {row.id} list {row.list} {row.created_at:%Y-%m-%d %H:%M} {row.status}: {summary}")
        if digest_id is not None:
            for failure in ledger.failures(row.id):
                click.echo(f"  failed {failure.email}: {failure.reason}")


@main.command()
@command
def serve(config: Any) -> None:
    """Serve the subscriber pages: subscribe, confirm, unsubscribe (incl. RFC 8058 one-click), preferences,
    provider webhooks, the digest archive and the feeds, on web.host:web.port.

    Stops cleanly on SIGTERM or SIGINT.  Set `serve = true` in [web] to have
    `publisher run` serve them beside the scheduler instead.
    """
    from publisher.web.server import serve as run_server

    run_server(config)


if __name__ == "__main__":  # pragma: no cover
    main()
