"""The command line's log handler: one line per record on standard error.

Only the entry points (``publisher.cli`` and the fast ``publisher.quickbuild``)
call it; library code never configures logging.  Kept free of heavy imports.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> logging.Handler:
    """Send the ``publisher`` loggers to standard error at ``level``; returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger("publisher")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return handler
