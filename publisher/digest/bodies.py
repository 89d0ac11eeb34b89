"""Post bodies for a digest: the HTML the build rendered, rendering it now when the build has not.

A build renders only the posts its feeds show, so a back-dated post (older than
the feed window) may reach a digest with no stored HTML, or with HTML from an
older version of its file.  Those are rendered here the same way the build
renders them, and saved, so feeds and digests agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from publisher.clock import Clock
from publisher.config import Config

log = logging.getLogger(__name__)


def with_html(config: Config, store: Any, clock: Clock, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Each row as a dict whose ``html`` and ``summary`` are current; rows that can't be rendered are dropped."""
    builder: Any = None
    result = []
    for row in rows:
        values = dict(row._mapping)
        if values["html"] is None or values["rendered_from"] != values["content_hash"]:
            builder = builder or _builder(config, store, clock)
            values.update(builder._render(row, builder.render_key(), clock.now()))
        if values.get("html") is None:
            log.warning("%s: no HTML for this post; leaving it out of the digest", values["path"])
            continue
        result.append(values)
    return result


def _builder(config: Config, store: Any, clock: Clock) -> Any:
    # TODO(lead): Builder could offer a public ``render_rows(rows)``; this borrows its private renderer.
    from publisher.build import Builder

    builder = Builder(config, clock=clock)
    builder._store = store  # share the composer's store; never close() this builder (it would close the store)
    return builder
