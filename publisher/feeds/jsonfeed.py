"""JSON Feed 1.1 documents (https://jsonfeed.org/version/1.1).

Written with the standard library only: keys in a fixed order, absent values left
out, UTF-8 with non-ASCII characters as themselves, so the same feed always gives
the same bytes.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

from publisher.feeds.model import Entry, Feed, Person, clean_line, clean_text, entry_times, feed_author

VERSION = "https://jsonfeed.org/version/1.1"


def render_json(feed: Feed) -> bytes:
    """The feed as a JSON Feed 1.1 document (UTF-8, ends with a newline)."""
    document = _compact(
        {
            "version": VERSION,
            "title": clean_line(feed.title),
            "home_page_url": feed.home_url,
            "feed_url": feed.self_url("json"),
            "description": clean_line(feed.subtitle or ""),
            "icon": feed.icon,
            "favicon": feed.icon,
            "language": feed.language,
            "authors": _authors(feed_author(feed)),
        }
    )
    document["items"] = _items(feed)  # required, even when empty
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _items(feed: Feed) -> list[dict]:
    return [
        _item(entry, published, updated)
        for entry, (published, updated) in zip(feed.entries, entry_times(feed.entries))
    ]


def _item(entry: Entry, published, updated) -> dict:
    content = clean_text(entry.content_html)
    summary = plain_text(clean_text(entry.summary_html))
    title = clean_line(entry.title)
    return _compact(
        {
            "id": entry.id,
            "url": entry.url,
            "title": title,
            "content_html": content if content.strip() else None,
            "content_text": None if content.strip() else (summary or title),
            "summary": summary,
            "date_published": published.isoformat(),
            "date_modified": updated.isoformat(),
            "authors": _authors(entry.author),
            "tags": [tag for tag in dict.fromkeys(map(clean_line, entry.categories)) if tag.strip()],
        }
    )


def _authors(person: Person | None) -> list[dict] | None:
    """JSON Feed 1.1 ``authors``: name and url (it has no e-mail field)."""
    if person is None:
        return None
    return [_compact({"name": clean_line(person.name), "url": person.uri})]


def _compact(fields: dict) -> dict:
    """``fields`` without the absent ones (None, empty strings and lists)."""
    return {key: value for key, value in fields.items() if value not in (None, "", [])}


def plain_text(html: str) -> str:
    """The text of an HTML fragment, tags dropped, entities decoded, white space collapsed."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.parts).split())


class _TextParser(HTMLParser):
    _SKIP = frozenset({"script", "style", "template"})
    _INLINE = frozenset(
        "a abbr b bdi bdo cite code data dfn em i kbd mark q s samp small span strong sub sup time u var".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag not in self._INLINE:
            self.parts.append(" ")  # a block (or <br>, <img>) separates words

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag not in self._INLINE:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)
