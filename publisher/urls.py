"""Making every URL in a piece of HTML absolute, leaving the rest untouched.

Feed readers and mail clients show a post away from its web page, so a link
like ``/week-473#gds``, ``#gds`` or ``photo.jpg`` must be resolved against the
post's own URL.  The HTML is read with the standard library's HTMLParser; only
the start tags that hold a URL to change are rewritten, everything else (text,
comments, entity spelling, attribute order and quoting of other tags) is
copied byte for byte.

:class:`SplicingParser` is the small machinery that does this "rewrite a few
spots, copy the rest" job; :mod:`publisher.erb` uses it too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from itertools import accumulate
from urllib.parse import urljoin

URL_ATTRIBUTES = frozenset(
    {"href", "src", "poster", "cite", "action", "formaction", "background", "longdesc", "usemap", "data", "xlink:href"}
)
SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# What the WHATWG URL parser strips around a URL, and removes inside it.
_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")


class SplicingParser(HTMLParser):
    """An HTMLParser that knows where each event starts, and splices edits into the source.

    Subclasses call :meth:`replace_start_tag` (from ``handle_starttag``) or
    :meth:`replace_here` (from ``handle_data``); :meth:`run` returns the source
    with those spans replaced and every other byte copied, each untouched gap
    passed through :meth:`fill_gap`.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self._line_starts: list[int] = [0]
        self._edits: list[tuple[int, int, str]] = []

    def run(self, html: str) -> str:
        self._line_starts = [0, *accumulate(len(line) + 1 for line in html.split("\n"))]
        self.feed(html)
        self.close()
        return self._splice(html)

    def position(self) -> int:
        """Offset in the source of the event being handled."""
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def self_closing(self) -> bool:
        return (self.get_starttag_text() or "").endswith("/>")

    def raw_tag_name(self, tag: str) -> str:
        """The tag's name as written (HTMLParser lowercases it)."""
        return (self.get_starttag_text() or "")[1 : 1 + len(tag)] or tag

    def replace_start_tag(self, text: str) -> None:
        start = self.position()
        self._edits.append((start, start + len(self.get_starttag_text() or ""), text))

    def replace_here(self, length: int, text: str) -> None:
        start = self.position()
        self._edits.append((start, start + length, text))

    def fill_gap(self, text: str) -> str:
        """Hook for the source between edits; copied unchanged by default."""
        return text

    def _splice(self, html: str) -> str:
        pieces: list[str] = []
        pos = 0
        for start, end, text in self._edits:
            pieces.append(self.fill_gap(html[pos:start]))
            pieces.append(text)
            pos = end
        pieces.append(self.fill_gap(html[pos:]))
        return "".join(pieces)


def start_tag(name: str, attrs: list[tuple[str, str | None]], self_closing: bool = False) -> str:
    """Write a start tag, double-quoting and escaping each attribute value."""
    parts = [name]
    for key, value in attrs:
        parts.append(key if value is None else f'{key}="{quote_attribute(value)}"')
    return "<" + " ".join(parts) + (" />" if self_closing else ">")


def quote_attribute(value: str) -> str:
    """Escape a value for a double-quoted attribute."""
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def has_scheme(url: str) -> bool:
    return _SCHEME.match(url) is not None


def absolute_url(url: str, base_url: str) -> str:
    """``url`` resolved against ``base_url``; a URL with a scheme is kept as it is.

    Surrounding blanks (and tabs/newlines inside) are removed first, as
    browsers do; ``mailto:``, ``tel:``, ``data:`` and other scheme URLs are
    never joined.  A protocol-relative ``//host/x`` takes the base's scheme.
    """
    cleaned = _TAB_OR_NEWLINE.sub("", url.strip(_C0_OR_SPACE))
    if has_scheme(cleaned):
        return cleaned
    return urljoin(base_url, cleaned)


def absolute_srcset(value: str, base_url: str) -> str:
    """Each candidate URL of a ``srcset`` made absolute; descriptors kept."""
    candidates = []
    for url, descriptor in _srcset_candidates(value):
        absolute = absolute_url(url, base_url)
        candidates.append(f"{absolute} {descriptor}" if descriptor else absolute)
    return ", ".join(candidates)


def _srcset_candidates(value: str) -> list[tuple[str, str]]:
    """Split a srcset as the HTML spec does: a URL, then descriptors up to a comma."""
    candidates = []
    pos, length = 0, len(value)
    while pos < length:
        while pos < length and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < length and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if not url:
            break
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = value.find(",", pos)
            end = length if end == -1 else end
            descriptor, pos = " ".join(value[pos:end].split()), end + 1
        candidates.append((url, descriptor))
    return candidates


def absolutize(html: str, base_url: str) -> str:
    """Every URL attribute in ``html`` made absolute against ``base_url``.

    ``base_url`` is the page the HTML belongs to (a post's own URL) and must
    be absolute.  Only the start tags whose URLs change are rewritten.
    """
    if not has_scheme(base_url):
        raise ValueError(f"base URL {base_url!r} is not absolute: give a scheme and host, e.g. https://example.com/")
    return _Absolutizer(base_url).run(html)


class _Absolutizer(SplicingParser):
    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._base_url = base_url

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        new_attrs = [(name, self._resolve(name, value)) for name, value in attrs]
        if new_attrs != attrs:
            self.replace_start_tag(start_tag(self.raw_tag_name(tag), new_attrs, self.self_closing()))

    def _resolve(self, name: str, value: str | None) -> str | None:
        if value is None:
            return None
        if name == "usemap" and value.strip().startswith("#"):
            return value  # a hash-name reference to a <map> in the same document, not a link
        if name in URL_ATTRIBUTES:
            return absolute_url(value, self._base_url)
        if name in SRCSET_ATTRIBUTES:
            return absolute_srcset(value, self._base_url)
        return value
