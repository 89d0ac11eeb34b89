"""``publisher build`` without the CLI, pydantic or SQLAlchemy, when the build stamp allows it.

A rebuild after a few posts changed is what a deploy hook or a cron job runs
most, and importing click, pydantic and SQLAlchemy costs more than the build.
So when the build stamp was made from the very bytes of this config file by
this publisher version, the build runs on the stamp's snapshot of the config
(:mod:`publisher.snapshot`) and a ``sqlite3`` store (:mod:`publisher.litestore`),
through the same :class:`publisher.build.Builder` as the full path.

Any doubt answers "not here" and the full CLI runs: no usable stamp or
snapshot, a database that is not a plain SQLite file or not at the schema
version LiteStore knows, a long scan on a terminal (which shows a progress
bar), or any error at all (the full path then reports it as usual).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from publisher import stamp

log = logging.getLogger(__name__)

PROGRESS_BAR_AT = 50  # the CLI shows a progress bar on a terminal from this many files to read


class _NotHere(Exception):
    """This build is for the full path."""


def build(config_path: Path, *, started: float | None = None) -> bool:
    """Build the site of ``config_path`` if the stamp allows it, printing what the CLI prints; True when done.

    False means nothing was printed and the full CLI must run (which is always correct).
    """
    started = time.perf_counter() if started is None else started
    try:
        seen = stamp.look(config_path, datetime.now(timezone.utc))
        if seen is None:
            return False
        if seen.fresh:
            _print(stamp.nothing_changed_line(len(seen.stats), time.perf_counter() - started))
            return True
        report = _build(config_path, seen, started)
    except Exception as exc:  # noqa: BLE001 - the full path runs and reports
        log.debug("quick build not possible (%s); the full build runs", exc)
        return False
    _show(report)
    return True


def _build(config_path: Path, seen: stamp.Look, started: float) -> Any:
    from publisher.build import Builder
    from publisher.litestore import LiteStore, Refused
    from publisher.snapshot import Snapshot, usable

    values = seen.stamp.get("snapshot")
    if not usable(values, config_path.absolute()):
        raise _NotHere("no snapshot of this config in the stamp")
    settings = Snapshot(values)
    try:
        store = LiteStore(settings.database_url)
    except Refused as exc:
        raise _NotHere(str(exc)) from exc
    _setup_logging(settings.log.level)
    builder = Builder(settings, store=store, progress=_no_bar)
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


def _setup_logging(level: str) -> None:
    """The CLI's log handler (see ``publisher.cli``): one line per record on standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("publisher")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


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
