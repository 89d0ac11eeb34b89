"""The ``publisher`` console script.

``publisher build`` is the command a cron job or a deploy hook runs most, so it
gets a fast path that answers from the build stamp before the CLI, pydantic or
SQLAlchemy are imported: nothing changed, or a few posts changed
(:mod:`publisher.quickbuild`).  Anything else, or any doubt, goes to the full
CLI in :mod:`publisher.cli`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    if not _quick_build(sys.argv[1:]):
        from publisher.cli import main as cli_main

        cli_main()


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
    from publisher.quickbuild import build

    return build(Path(config), started=started)

