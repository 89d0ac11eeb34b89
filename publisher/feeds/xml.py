"""Atom 1.0 and RSS 2.0 documents, built with feedgen.

feedgen does most of the work; this module sets every field it would otherwise
fill in itself (it defaults the updated and lastBuildDate times to *now*, and names
itself as the generator), and mends what it gets wrong for the W3C Feed
Validation Service:

* ``add_entry()`` prepends unless told ``order="append"``;
* its Atom entries drop a link's ``rel`` and ``type`` (upstream issue 135): an
  entry extension puts ``rel="alternate" type="text/html"`` back;
* RSS ``<author>`` must be an e-mail address, so names go in ``dc:creator``;
* plain-text elements (titles, RSS descriptions and categories) holding ``<`` or
  ``&`` are written with hexadecimal character references (``&#x3C;``), the form
  the RSS Best Practices Profile asks for and the validator accepts without a
  warning.

Importing this module imports feedgen and lxml; ``publisher.feeds.model.render``
imports it only when an XML format is asked for.
"""

from __future__ import annotations

from html import escape

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator

from publisher.feeds.model import (
    GENERATOR,
    MEDIA_TYPES,
    Entry,
    Feed,
    Person,
    clean_line,
    clean_text,
    entry_times,
    feed_author,
    feed_updated,
)

_FIXUPS = "publisher_fixups"
# Noncharacters stand for "<" and "&" in plain text until serialisation, where they
# become hexadecimal character references (lxml would write &lt; and &amp;); clean_text
# removes any from the input first.
_LT, _AMP = "\ufdd0", "\ufdd1"
_REFERENCES = ((_LT.encode(), b"&#x3C;"), (_AMP.encode(), b"&#x26;"))


def render_atom(feed: Feed) -> bytes:
    """The feed as an Atom 1.0 document (UTF-8)."""
    times = entry_times(feed.entries)
    generator = _generator(feed, "atom", times)
    generator.id(feed.id)
    author = feed_author(feed)
    if author is not None:
        generator.author(_atom_person(author))
    if feed.icon:
        generator.icon(feed.icon)
    _add_entries(generator, feed, times, _atom_entry)
    return _finish(generator.atom_str(pretty=True), feed.stylesheet)


def render_rss(feed: Feed) -> bytes:
    """The feed as an RSS 2.0 document (UTF-8), with ``atom:link rel="self"``."""
    times = entry_times(feed.entries)
    generator = _generator(feed, "rss", times)
    generator.load_extension("dc", atom=False, rss=True)
    generator.description(_plain(feed.subtitle or feed.title))
    _add_entries(generator, feed, times, _rss_entry)
    return _finish(generator.rss_str(pretty=True), feed.stylesheet)


def _generator(feed: Feed, fmt: str, times) -> FeedGenerator:
    """A FeedGenerator holding what both formats share, with none of its own defaults left."""
    generator = FeedGenerator()
    generator.register_extension(_FIXUPS, BaseExtension, _Fixups, atom=True, rss=True)
    generator.title(_plain(feed.title))
    generator.updated(feed_updated(feed, times))  # also RSS lastBuildDate: never "now"
    generator.generator(GENERATOR)  # no feedgen version in our output
    generator.link(href=feed.self_url(fmt), rel="self", type=MEDIA_TYPES[fmt])
    generator.link(href=feed.home_url, rel="alternate", type="text/html")  # last link: the RSS <link>
    if feed.subtitle:
        generator.subtitle(_plain(feed.subtitle))
    if feed.language:
        generator.language(feed.language)
    return generator


def _add_entries(generator: FeedGenerator, feed: Feed, times, fill) -> None:
    """One feedgen entry per entry, in the feed's order (feedgen prepends by default)."""
    for entry, (published, updated) in zip(feed.entries, times):
        item = generator.add_entry(order="append")
        item.title(_plain(entry.title))
        item.published(published)
        item.updated(updated)
        fill(item, entry, feed)


def _atom_entry(item, entry: Entry, feed: Feed) -> None:
    item.id(entry.id)
    item.link(href=entry.url, rel="alternate", type="text/html")
    if entry.author is not None:
        item.author(_atom_person(entry.author))
    content, summary = _texts(entry)
    if content:
        item.content(content, type="html")
    if summary:
        item.summary(summary, type="html")
    for term in _terms(entry):
        item.category(term=term)


def _rss_entry(item, entry: Entry, feed: Feed) -> None:
    item.guid(entry.id, permalink=entry.id == entry.url)
    item.link(href=entry.url)
    content, summary = _texts(entry)
    if summary:
        item.description(summary, isSummary=True)  # <description>: the summary
    if content:
        item.content(content)  # <content:encoded>: the full text, after <description>
    author = entry.author or feed.author
    if author is not None:
        item.dc.dc_creator(clean_line(author.name))
    for term in _terms(entry):
        item.category(term=_plain(term))  # RSS categories are plain-text elements


def _texts(entry: Entry) -> tuple[str, str]:
    """(content, summary) HTML; the escaped title stands in when an entry has neither."""
    content, summary = clean_text(entry.content_html), clean_text(entry.summary_html)
    if content.strip() or summary.strip():
        return content, summary
    return "", escape(clean_line(entry.title))


def _terms(entry: Entry) -> list[str]:
    """The entry's categories, cleaned, without blanks or repeats."""
    return [term for term in dict.fromkeys(clean_line(term) for term in entry.categories) if term.strip()]


def _atom_person(person: Person) -> dict[str, str]:
    fields = {"name": _plain(person.name), "uri": person.uri, "email": person.email}
    return {key: value for key, value in fields.items() if value}


def _plain(text: str) -> str:
    """One-line plain text with "<" and "&" marked, to be written as character references."""
    return clean_line(text).replace("&", _AMP).replace("<", _LT)


def _finish(document: bytes, stylesheet: str | None) -> bytes:
    """Character references for the marked characters, and the xml-stylesheet PI."""
    for mark, reference in _REFERENCES:
        document = document.replace(mark, reference)
    if stylesheet:
        declaration, newline, rest = document.partition(b"\n")
        href = escape(stylesheet, quote=True).encode()
        document = declaration + newline + b'<?xml-stylesheet type="text/xsl" href="' + href + b'"?>\n' + rest
    return document


class _Fixups(BaseEntryExtension):
    """Mends each Atom entry as feedgen builds it."""

    def extend_atom(self, entry):
        for link in entry.iter("link"):
            if "rel" not in link.attrib:  # feedgen dropped them
                link.set("rel", "alternate")
                link.set("type", "text/html")
        return entry
