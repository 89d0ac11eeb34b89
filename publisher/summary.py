"""A post's summary, taken from its rendered HTML.

Two modes:

* ``paragraph``: the first paragraph (``<p>...</p>``) that holds some text,
  skipping empty ones and ones holding only an image; a body without one
  falls back to ``characters``;
* ``characters``: the first ``length`` characters of text (whitespace runs
  count as one), cut between words or at a tag, with ``…`` appended when
  anything was cut.

Either way the result is balanced HTML: every element opened is closed,
stray end tags are dropped, scripts, styles and comments are left out.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

MODES = ("paragraph", "characters")
ELLIPSIS = "…"

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_SKIPPED = frozenset({"script", "style", "template", "noscript"})
# Elements that may not hold text: the ellipsis goes after they are closed.
_NO_TEXT = frozenset({"ul", "ol", "dl", "table", "thead", "tbody", "tfoot", "tr", "colgroup", "select", "optgroup"})
_BLANKS = re.compile(r"\s+")

# ("start", tag, raw start tag, self-closing) | ("end", tag) | ("text", unescaped text, in <pre>)
Event = tuple[Any, ...]


def summarize(html_text: str, mode: str = "paragraph", length: int = 300) -> str:
    """The summary of ``html_text`` in the given mode (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"summary mode {mode!r} unknown: use one of {', '.join(MODES)}")
    if length < 1:
        raise ValueError(f"summary length {length} must be at least 1")
    events = _Events.of(html_text)
    if mode == "paragraph":
        paragraph = _first_paragraph(events)
        if paragraph is not None:
            return _write(paragraph, limit=None)
    return _write(events, limit=length)


class _Events(HTMLParser):
    """The start tags, end tags and text of a document, scripts and comments left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[Event] = []
        self._skipping: str | None = None
        self._pre = 0

    @classmethod
    def of(cls, html_text: str) -> list[Event]:
        parser = cls()
        parser.feed(html_text)
        parser.close()
        return parser.events

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            return
        if tag in _SKIPPED:
            self._skipping = tag
            return
        self._pre += tag == "pre"
        self.events.append(("start", tag, self.get_starttag_text() or f"<{tag}>", False))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skipping and tag not in _SKIPPED:
            self.events.append(("start", tag, self.get_starttag_text() or f"<{tag} />", True))

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            self._skipping = None if tag == self._skipping else self._skipping
            return
        if tag == "pre" and self._pre:
            self._pre -= 1
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.events.append(("text", data, self._pre > 0))


def _first_paragraph(events: list[Event]) -> list[Event] | None:
    """The events of the first ``<p>`` holding some text, or None."""
    for start, event in enumerate(events):
        if event[0] != "start" or event[1] != "p":
            continue
        end = _paragraph_end(events, start)
        paragraph = events[start:end]
        if "".join(e[1] for e in paragraph if e[0] == "text").strip():
            return paragraph
    return None


def _paragraph_end(events: list[Event], start: int) -> int:
    """Index just past the paragraph opened at ``start`` (closed or implied closed)."""
    for index in range(start + 1, len(events)):
        kind, tag = events[index][0], events[index][1]
        if kind == "end" and tag == "p":
            return index + 1
        if kind == "start" and tag == "p":
            return index
    return len(events)


def _write(events: list[Event], limit: int | None) -> str:
    """Write ``events`` back as balanced HTML, stopping after ``limit`` characters of text."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # open elements, and where their start tag is in ``out``
    budget = limit
    cut = False
    for event in events:
        if event[0] == "start":
            _open(event, out, stack)
        elif event[0] == "end":
            _close_to(event[1], out, stack)
        elif budget is None or not event[1].strip():
            out.append(html.escape(event[1], quote=False))
        else:
            text = event[1] if event[2] else _BLANKS.sub(" ", event[1])
            if len(text) > budget:
                out.append(html.escape(_word_cut(text, budget, _has_text(out)), quote=False))
                _trim_tail(out, stack)
                cut = True
                break
            out.append(html.escape(text, quote=False))
            budget -= len(text)
    out.append(_closing([tag for tag, _ in stack], cut))
    return "".join(out).strip()


def _open(event: Event, out: list[str], stack: list[tuple[str, int]]) -> None:
    _, tag, raw, self_closing = event
    if tag not in _VOID and not self_closing:
        stack.append((tag, len(out)))
    out.append(raw)


def _close_to(tag: str, out: list[str], stack: list[tuple[str, int]]) -> None:
    """Close ``tag`` and any element left open inside it; ignore a stray end tag."""
    if all(open_tag != tag for open_tag, _ in stack):
        return
    while stack:
        open_tag, _ = stack.pop()
        out.append(f"</{open_tag}>")
        if open_tag == tag:
            return


def _trim_tail(out: list[str], stack: list[tuple[str, int]]) -> None:
    """At a cut: drop elements left empty at the end, and trailing blanks."""
    while stack and not "".join(out[stack[-1][1] + 1 :]).strip():
        del out[stack.pop()[1] :]
    while out and not out[-1].startswith("<") and not out[-1].rstrip():
        out.pop()
    if out and not out[-1].startswith("<"):
        out[-1] = out[-1].rstrip()


def _has_text(out: list[str]) -> bool:
    return any(piece.strip() and not piece.startswith("<") for piece in out)


def _word_cut(text: str, budget: int, may_drop_all: bool) -> str:
    """At most ``budget`` characters of ``text``, ending at a word boundary.

    When no boundary fits, the whole text is dropped (cutting at the tag before
    it) if ``may_drop_all``, else the word is cut hard.
    """
    head = text[: budget + 1]
    space = head.rfind(" ")
    if space > 0 and head[:space].strip():
        return head[:space].rstrip()
    return "" if may_drop_all else text[:budget]


def _closing(stack: list[str], cut: bool) -> str:
    """The end tags for every open element, with the ellipsis in the innermost one that takes text."""
    pieces = []
    placed = not cut
    for tag in reversed(stack):
        if not placed and tag not in _NO_TEXT:
            pieces.append(ELLIPSIS)
            placed = True
        pieces.append(f"</{tag}>")
    if not placed:
        pieces.append(ELLIPSIS)
    return "".join(pieces)
