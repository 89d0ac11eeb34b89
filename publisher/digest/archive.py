"""The web copy of each digest, written next to the feeds: the "view in browser" target.

``<feeds output>/digests/<list>/<digest id>.html``, served at
``<feeds url>digests/<list>/<digest id>.html``.  It is the email's HTML with the
per-recipient placeholders filled with neutral values: no subscriber's address
and no personal unsubscribe link (the generic unsubscribe page instead).
"""

from __future__ import annotations

import logging
from pathlib import Path

from publisher.config import Config
from publisher.mail.letter import fill
from publisher.output import write_atomic

log = logging.getLogger(__name__)


def web_path(config: Config, list_name: str, digest_id: int) -> Path:
    return config.output_dir / "digests" / list_name / f"{digest_id}.html"


def web_url(config: Config, list_name: str, digest_id: int) -> str:
    return f"{config.feeds_url}digests/{list_name}/{digest_id}.html"


def neutral_values(config: Config) -> dict[str, str]:
    """What the web copy shows where a recipient's own values go."""
    return {"name": "", "email": "you", "unsubscribe_url": config.web_url + "unsubscribe"}


def write_web_copy(config: Config, list_name: str, digest_id: int, html: str) -> Path:
    """Write the web copy of a digest whose email HTML (with placeholders) is ``html``; return its path."""
    path = web_path(config, list_name, digest_id)
    write_atomic(path, fill(html, neutral_values(config), escape=True).encode("utf-8"))
    log.debug("wrote %s", path)
    return path
