"""Entry IDs: made once, when a post is first published, then stored forever.

The scheme is a template (``feeds.entry_id``).  The default,
``tag:{domain},{date}:/{name}``, is the RFC 4151 tag URI that many existing
sites (the Go Free Range site among them) already use, so moving such a feed to
publisher shows its readers no duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

ID_FIELDS = frozenset({"domain", "date", "year", "month", "day", "name", "url_path", "kind", "url", "uuid"})


class EntryIds:
    """Makes entry IDs from the ``feeds.entry_id`` template for one site."""

    def __init__(self, template: str, site_url: str) -> None:
        self.template = template
        self.domain = urlsplit(site_url).hostname or "localhost"
        self.fields = set(re.findall(r"{(\w+)", template))
        self._uses_url = bool(self.fields & {"url", "url_path"})

    def make(self, *, url: str | Callable[[], str], name: str, kind: str | None, created: str) -> str:
        """``created`` is the creation time as written in the post (ISO, its own offset), so ``{date}`` is the
        date the author wrote, whatever the server's time zone.  ``url`` is the post's URL, or a function that
        makes it (called only when the template has ``{url}`` or ``{url_path}``: a first build makes 10,000 IDs)."""
        day = created[:10]
        values = {"domain": self.domain, "date": day, "year": day[:4], "month": day[5:7], "day": day[8:10],
                  "name": name, "kind": kind or ""}
        if self._uses_url:
            values["url"] = url() if callable(url) else url
        if "url_path" in self.fields:
            values["url_path"] = urlsplit(values["url"]).path
        if "uuid" in self.fields:
            import uuid  # only for {uuid} templates: importing it costs a build ~2 ms

            values["uuid"] = str(uuid.uuid4())
        return self.template.format(**values)
