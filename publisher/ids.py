"""Entry IDs: made once, when a post is first published, then stored forever.

The scheme is a template (``feeds.entry_id``).  The default,
``tag:{domain},{date}:/{name}``, is the RFC 4151 tag URI that many existing
sites (the Go Free Range site among them) already use, so moving such a feed to
publisher shows its readers no duplicates.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import urlsplit

ID_FIELDS = frozenset({"domain", "date", "year", "month", "day", "name", "url_path", "kind", "url", "uuid"})


def make_entry_id(template: str, *, site_url: str, url: str, name: str, kind: str | None, created_at: datetime) -> str:
    """Fill the template; ``{date}`` is the creation date as written in the post (its own offset)."""
    day = created_at.date()
    return template.format(
        domain=urlsplit(site_url).hostname or "localhost",
        date=day.isoformat(),
        year=f"{day.year:04d}",
        month=f"{day.month:02d}",
        day=f"{day.day:02d}",
        name=name,
        url_path=urlsplit(url).path,
        kind=kind or "",
        url=url,
        uuid=uuid.uuid4(),
    )
