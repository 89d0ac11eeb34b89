"""The ``publisher`` console script.

``publisher build`` is the command a cron job or a deploy hook runs most, so it
gets a fast path without the CLI or SQLAlchemy, which answers from the build
stamp without pydantic either when it can (:mod:`publisher.quickbuild`), and
ends the process without tearing the interpreter down.  Anything else, or any
doubt, goes to the full CLI in :mod:`publisher.cli`.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path


def main() -> None:
    if _quick_build(sys.argv[1:]):
        _end()
    from publisher.cli import main as cli_main

    cli_main()


def _end() -> None:
    """End the process after a quick build, with status 0, without tearing the interpreter down.

    Everything the build opened is closed and all it printed is flushed here; what remains is freeing the
    objects of every imported module one by one (Markdown, lxml, feedgen...), ~10 ms that a cron job or a
    deploy hook waits for and nobody needs.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.shutdown()  # flushes the log handlers, as the interpreter's own exit would
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        os._exit(120)  # what the interpreter's own exit gives when it can't flush standard output
    os._exit(0)


def _config_argument(args: list[str]) -> str | None:
    """The config path of a plain ``build [--config PATH]``, or None for any other command line."""
    if not args or args[0] != "build":
        return None
    rest = args[1:]
    if not rest:
        return os.environ.get("PUBLISHER_CONFIG", "config.toml")
    if len(rest) == 2 and rest[0] == "--config":
        return rest[1]
    if len(rest) == 1 and rest[0].startswith("--config="):
        return rest[0].partition("=")[2]
    return None


def _quick_build(args: list[str]) -> bool:
    config = _config_argument(args)
    if config is None:
        return False
    started = time.perf_counter()
    gc.disable()  # a short process that makes little cyclic garbage: collections would only cost it time
    try:
        from publisher.quickbuild import build

        return build(Path(config), started=started)
    finally:
        gc.enable()  # the full CLI may run next (a daemon, say): collect as usual there

