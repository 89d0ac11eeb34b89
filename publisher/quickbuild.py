"""``publisher build`` without the CLI or SQLAlchemy, and without pydantic when the build stamp allows it.

``publisher build`` is what a deploy hook or a cron job runs, and importing
click, pydantic and SQLAlchemy costs more than a build with a few changed
posts.  So on a plain SQLite state database the build runs through the same
:class:`publisher.build.Builder` as the full path, with a ``sqlite3`` store
(:mod:`publisher.litestore`, which also makes a new database), and with the
config validated by pydantic only when the build stamp was not made from the
very bytes of this config file by this publisher version (otherwise the
stamp's snapshot of the config serves: :mod:`publisher.snapshot`).

Any doubt answers "not here" and the full CLI runs: a config that does not
validate (the CLI reports it), a database that is not a plain SQLite file or
not at the schema version LiteStore knows, a long scan on a terminal (which
shows a progress bar), or any error at all (the full path then reports it as
usual).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from publisher import stamp

PROGRESS_BAR_AT = 50  # the CLI shows a progress bar on a terminal from this many files to read


#: What a build with changed posts imports, in the order it needs them: imported while a helper scans, each
#: only while it has not answered.  Markdown last, in pieces of a few milliseconds (all of it at once would
#: make a build with nothing changed wait): a build that renders needs it, if the helper leaves the time.
WARM_UP = ("publisher.snapshot", "sqlite3", "publisher.litestore", "dataclasses", "publisher.snip", "publisher.posts",
           "publisher.sync", "html", "publisher.feeds.model", "publisher.build", "lxml.etree", "dateutil.tz",
           "dateutil.parser", "publisher.feeds.xml", "publisher.feeds.jsonfeed",
           "markdown", "markdown.extensions.codehilite", "markdown.extensions.fenced_code",
           "markdown.extensions.footnotes", "markdown.extensions.tables", "markdown.extensions.md_in_html",
           "publisher.render")


class _NotHere(Exception):
    """This build is for the full path."""


def build(config_path: Path, *, started: float | None = None) -> bool:
    """Build the site of ``config_path`` here if it can be, printing what the CLI prints; True when done.

    False means nothing was printed and the full CLI must run (which is always correct).
    """
    started = time.perf_counter() if started is None else started
    try:
        report = _build(config_path, started)
    except Exception as exc:  # noqa: BLE001 - the full path runs and reports
        import logging  # not before: a build with nothing changed never logs

        logging.getLogger(__name__).debug("quick build not possible (%s); the full build runs", exc)
        return False
    if report is not None:
        _show(report)
    return True


def _build(config_path: Path, started: float) -> Any | None:
    """The build's report; None when nothing had changed (and the line saying so is printed)."""
    from publisher.snapshot import Snapshot, usable

    found = stamp.find(config_path)
    seen = _look(found, datetime.now(timezone.utc)) if found is not None else None
    if seen is not None and seen.fresh:
        _print(stamp.nothing_changed_line(len(seen.stats), time.perf_counter() - started))
        return None
    values = found.get("snapshot") if found is not None else None
    if seen is None or not usable(values, config_path.absolute()):
        return _run(_validated_builder(config_path), None, started)
    return _run(_builder(Snapshot(values)), seen, started)


def _look(found: dict[str, Any], now: datetime) -> stamp.Look:
    """The look at the stamp: on two CPUs, the scan runs in a helper process while this one imports what a
    build needs (a build with nothing changed stops importing as soon as the helper has answered)."""
    from publisher import forked

    if not forked.worth_forking():
        return stamp.look_at(found, now)
    with forked.Helper(lambda: _look_here(found, now).packed()) as helper:
        for module in WARM_UP:
            if helper.ready():
                break
            __import__(module)
        packed = helper.result()
    if packed is None:  # the helper failed: look here (a ScanError then goes to the CLI, which reports it)
        return stamp.look_at(found, now)
    return stamp.Look.unpacked(found, packed)


def _look_here(found: dict[str, Any], now: datetime) -> stamp.Look:
    """The look at the stamp, with the paths changed since it when anything has (work for the helper)."""
    from publisher.snapshot import Snapshot

    seen = stamp.look_at(found, now)
    if seen.fresh or not isinstance(found.get("snapshot"), dict):
        return seen
    try:
        return seen._replace(changed=stamp.changed_since(Snapshot(found["snapshot"]), seen.stats))
    except (KeyError, TypeError, ValueError):  # a snapshot not as this version takes them: the build finds out
        return seen


def _validated_builder(config_path: Path) -> Any:
    """A Builder for the config validated now (a ConfigError goes to the CLI, which reports it), with the posts
    of a first build read ahead meanwhile."""
    ahead = _read_ahead(config_path)  # before importing pydantic, which takes a while: the helper reads meanwhile
    try:
        from publisher.config import load_config

        return _builder(load_config(config_path), read_ahead=ahead)
    except BaseException:
        if ahead is not None:
            ahead.close()
        raise


def _read_ahead(config_path: Path) -> Any | None:
    """On two CPUs, for what looks like a first build (no database where the raw config puts it by default), a
    helper reading the posts with the posts folder and time zone the raw config names, while pydantic validates
    it; the sync uses the helper's part only if the validated config agrees (:class:`publisher.sync.ReadAhead`).
    """
    import tomllib
    from zoneinfo import ZoneInfo

    from publisher import forked, sync

    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        base, posts, state = config_path.absolute().parent, raw["posts"], raw.get("state", {})
        if "database" in state or (base / state.get("directory", "state") / "publisher.db").exists():
            return None
        tz = ZoneInfo(raw.get("site", {}).get("timezone", "UTC"))
        folders = list(posts.get("folders", []))
        root = base / posts["root"]
    except Exception:  # noqa: BLE001 - no guess: the build reads everything itself
        return None
    if not forked.worth_forking():
        return None
    from publisher.prerender import Renders

    return sync.ReadAhead(root, folders, tz, Renders())


def _builder(settings: Any, read_ahead: Any = None) -> Any:
    from publisher.build import Builder
    from publisher.litestore import LiteStore, Refused
    from publisher.logsetup import setup_logging

    setup_logging(settings.log.level)
    try:
        store = LiteStore(settings.database_url)
    except Refused as exc:
        raise _NotHere(str(exc)) from exc
    return Builder(settings, store=store, progress=_no_bar, read_ahead=read_ahead)


def _run(builder: Any, seen: stamp.Look | None, started: float) -> Any:
    try:
        return builder.build(scanned=seen, started=started)
    finally:
        builder.close()


@contextmanager
def _no_bar(total: int, label: str) -> Iterator[Any]:
    """The progress of reading posts: none; a read long enough for the CLI's bar goes to the CLI."""
    from publisher.sync import no_progress

    if total >= PROGRESS_BAR_AT and sys.stderr.isatty():
        raise _NotHere("a long scan on a terminal: the CLI shows a progress bar")
    with no_progress(total, label) as bar:
        yield bar


def _show(report: Any) -> None:
    """What ``publisher build`` prints for a report (see ``publisher.cli.build``)."""
    for path in report.written:
        _print(f"wrote {path}")
    for problem in report.errors:
        print(f"warning: {problem}", file=sys.stderr)
    _print(report.line())
    if report.discovery:
        _print("autodiscovery tags for your site's <head>:")
        for tag in report.discovery:
            _print(f"  {tag}")


def _print(line: str) -> None:
    print(line)
