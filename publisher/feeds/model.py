"""The feed model shared by the three formats, and what every format derives from it.

A :class:`Feed` is plain data built by the builder; ``render(feed, fmt)`` turns
it into the bytes of one format.  The helpers here hold the rules that all three
formats must agree on (times, the fallback author), so that the Atom, RSS and
JSON documents describe the same entries the same way.

This module imports nothing heavy: feedgen and lxml are imported only when an
XML format is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from html import escape

from publisher.errors import RenderError

FORMATS = ("atom", "rss", "json")
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
FORMAT_NAMES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
GENERATOR = "publisher"

# Characters no feed should carry: those XML 1.0 forbids (the validator rejects the
# document; lone surrogates too), C1 controls and U+FFFD (it warns: "bad characters"), DEL and the Unicode
# noncharacters (HTML parse errors in content).
# Written as what is allowed (a few ranges): listing the 34 noncharacters one by one makes every search
# twenty times slower, and each feed searches all its entries' HTML.
_ALLOWED = "\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufdcf\ufdf0-\ufffc" + "".join(
    f"{chr(plane)}-{chr(plane + 0xFFFD)}" for plane in range(0x10000, 0x110000, 0x10000))
_UNWANTED = re.compile(f"[^{_ALLOWED}]")
_LINE_BREAKS = re.compile(r"[\r\n]+")
_ONE_SECOND = timedelta(seconds=1)
_HALF_HOUR = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    uri: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    id: str  # a URI (e.g. tag:gofreerange.com,2018-02-09:/week-473), stable forever
    url: str  # absolute alternate link
    title: str  # plain text
    content_html: str  # full HTML, URLs already absolute
    summary_html: str  # HTML summary, URLs already absolute
    published: datetime  # aware
    updated: datetime  # aware
    author: Person | None
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.published, self.id, "published")
        _require_aware(self.updated, self.id, "updated")


@dataclass(frozen=True, slots=True)
class Feed:
    id: str  # URI identifying the feed
    title: str
    home_url: str  # the site (or section) page, absolute
    self_urls: Mapping[str, str]  # absolute URL where each format is published: "atom", "rss", "json"
    updated: datetime  # aware; the newest entry's updated time
    entries: tuple[Entry, ...]  # newest first, as they must appear
    subtitle: str | None = None
    language: str | None = None
    author: Person | None = None  # feed-level author (fallback for entries without one)
    icon: str | None = None
    stylesheet: str | None = None  # href of the XSLT for the xml-stylesheet PI (Atom, RSS)

    def __post_init__(self) -> None:
        _require_aware(self.updated, self.id, "updated")

    def self_url(self, fmt: str) -> str:
        """The URL where format ``fmt`` is published; every format links to itself."""
        url = self.self_urls.get(fmt)
        if not url:
            raise RenderError(self.id, f'self_urls has no "{fmt}" URL: give the address the {fmt} feed is published at')
        return url


def _require_aware(value: datetime, owner: str, field: str) -> None:
    if not isinstance(value, datetime):
        raise RenderError(owner, f"{field} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise RenderError(owner, f"{field} {value.isoformat()} has no timezone: give it a UTC offset "
                                 "(feeds need aware times)")


def render(feed: Feed, fmt: str) -> bytes:
    """The bytes of ``feed`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        from publisher.feeds.jsonfeed import render_json

        return render_json(feed)
    if fmt in ("atom", "rss"):
        from publisher.feeds import xml

        return xml.render_atom(feed) if fmt == "atom" else xml.render_rss(feed)
    raise ValueError(f"unknown feed format {fmt!r}: expected one of {', '.join(FORMATS)}")


def discovery_links(feed: Feed) -> list[str]:
    """``<link rel="alternate">`` tags announcing each published format, for an HTML head."""
    links = []
    for fmt in FORMATS:
        url = feed.self_urls.get(fmt)
        if url:
            title = f"{feed.title} ({FORMAT_NAMES[fmt]})"
            links.append(
                f'<link rel="alternate" type="{MEDIA_TYPES[fmt]}" '
                f'title="{escape(title)}" href="{escape(url)}">'
            )
    return links


@lru_cache(maxsize=512)
def clean_text(text: str) -> str:
    """``text`` without the characters no feed should carry (see ``_UNWANTED``).

    Cached: every format cleans the same entry HTML again.
    """
    return _UNWANTED.sub("", text)


def clean_line(text: str) -> str:
    """One-line plain text (a title, a name, a category): cleaned, line breaks made spaces."""
    return _LINE_BREAKS.sub(" ", clean_text(text))


def feed_time(value: datetime) -> datetime:
    """``value`` as the feeds write it: whole seconds, in UTC unless its offset is whole half hours.

    RSS dates carry no fractions of a second, so Atom and JSON drop them too and all
    formats agree.  An offset with seconds (old local-mean-time zones) has no RFC 3339
    spelling, and the W3C validator calls an RFC 822 offset such as +0545 that is not
    a whole half hour "problematical": such times are written in UTC.
    """
    value = value.replace(microsecond=0)
    offset = value.utcoffset()
    if offset is not None and offset % _HALF_HOUR:
        value = value.astimezone(timezone.utc)
    return value


def entry_times(entries: tuple[Entry, ...]) -> list[tuple[datetime, datetime]]:
    """(published, updated) for each entry, as written, with no two updated times equal.

    Feed validators warn when two entries share an updated time, as same-day posts
    that carry only a date do.  Going from the oldest (last) entry to the newest,
    an entry whose updated time is taken moves one second later until it is unique:
    the newer of two such posts stays the newer, and a midnight time stays on its day.
    """
    taken: set[datetime] = set()
    times = []
    for entry in reversed(entries):
        updated = feed_time(entry.updated)
        while updated in taken:
            updated += _ONE_SECOND
        taken.add(updated)
        times.append((min(feed_time(entry.published), updated), updated))
    return times[::-1]


def feed_updated(feed: Feed, times: list[tuple[datetime, datetime]]) -> datetime:
    """The feed's updated time, never before an entry's (``times`` from :func:`entry_times`)."""
    return max([feed_time(feed.updated)] + [updated for _, updated in times])


def feed_author(feed: Feed) -> Person | None:
    """The feed-level author: the feed's own, else (when some entry has none) the site itself.

    Atom requires an author on every entry or on the feed, and an empty feed still
    needs one; with no configured author the site's title and home page stand in.
    """
    if feed.author is not None:
        return feed.author
    if feed.entries and all(entry.author is not None for entry in feed.entries):
        return None
    return Person(name=feed.title, uri=feed.home_url)
