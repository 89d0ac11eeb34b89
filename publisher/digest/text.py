"""Post HTML as readable plain text, for the text part of a digest.

Markdown-like: paragraphs separated by blank lines, ``## headings``, ``-`` and
``1.`` list items, ``>`` quotes, indented code, ``*emphasis*``, and each link
written as its text followed by ``[n]``, its URL listed with the same number
(:class:`LinkRefs`, shared by the whole digest so a URL keeps one number).
Images become their alt text.  Lines are wrapped at 76 columns.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from html.parser import HTMLParser

WIDTH = 76
_SPACE = re.compile(r"\s+")
_BLOCKS = frozenset("p div section article header footer main aside figure figcaption table thead tbody tfoot "
                    "tr dl dt dd address details summary center".split())
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_INLINE_MARKS = {"strong": "**", "b": "**", "em": "*", "i": "*", "code": "`", "tt": "`", "kbd": "`"}
_SKIP = frozenset("script style template head title".split())
_LINKABLE = ("http://", "https://", "mailto:", "tel:")
_BREAK = "\x00"  # a <br>: source newlines are only spaces


@dataclass
class LinkRefs:
    """Numbered link references; a URL seen twice keeps its first number."""

    numbers: dict[str, int] = field(default_factory=dict)

    def number(self, url: str) -> int:
        return self.numbers.setdefault(url, len(self.numbers) + 1)

    def since(self, start: int) -> list[tuple[int, str]]:
        """The references numbered after ``start``, as (number, url)."""
        return [(n, url) for url, n in self.numbers.items() if n > start]


@dataclass
class _Block:
    prefix: str = ""  # first-line prefix (list marker, heading hashes, quote marks)
    indent: str = ""  # following lines
    pre: bool = False
    item: bool = False  # a list item or table row: one newline, not a blank line, after the one before
    first: bool = False  # the first item of a list or table: a blank line before it


class _Converter(HTMLParser):
    def __init__(self, refs: LinkRefs) -> None:
        super().__init__(convert_charrefs=True)
        self.refs = refs
        self.blocks: list[tuple[str, bool, bool]] = []  # (text, joins the item before tightly, is an item)
        self.inline: list[str] = []
        self.block = _Block()
        self.lists: list[list[int | None]] = []  # per open list: [counter] (None for <ul>)
        self.quote = 0
        self.pre = 0
        self.skip = 0
        self.links: list[tuple[str | None, int]] = []  # (href, position in inline)
        self.cells = 0
        self.group_start = False  # a list or table just opened: its first line is not tight

    # -- events -----------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag in _SKIP:
            self.skip += 1
        elif tag in _HEADINGS:
            self._new_block(_Block(prefix="#" * _HEADINGS[tag] + " "))
        elif tag in ("ul", "ol"):
            self.flush()
            self.group_start = not self.lists
            self.lists.append([_start(attr) if tag == "ol" else None])
        elif tag == "li":
            self._list_item()
        elif tag == "blockquote":
            self.flush()
            self.quote += 1
        elif tag == "pre":
            self._new_block(_Block(pre=True))
            self.pre += 1
        else:
            self._inline_start(tag, attr)

    def _inline_start(self, tag: str, attr: dict[str, str | None]) -> None:
        if tag == "tr":
            self._new_block(_Block(item=True, first=self.group_start))
            self.group_start = False
            self.cells = 0
        elif tag in _BLOCKS:
            self.flush()
            self.cells = 0
            self.group_start = self.group_start or tag == "table"
        elif tag in ("td", "th"):
            self.inline.append(" | " if self.cells else "")
            self.cells += 1
        elif tag == "br":
            self.inline.append(_BREAK)
        elif tag == "hr":
            self.flush()
            self.blocks.append(("* * *", False, False))
        elif tag == "img":
            alt = _SPACE.sub(" ", attr.get("alt") or "").strip()
            self.inline.append(f"[image: {alt}]" if alt else "")
        elif tag == "a":
            self.links.append((attr.get("href"), len(self.inline)))
        elif tag in _INLINE_MARKS and not self.pre:
            self.inline.append(_INLINE_MARKS[tag])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _HEADINGS or tag in _BLOCKS or tag == "li":
            self.flush()
        elif tag in ("ul", "ol"):
            self.flush()
            if self.lists:
                self.lists.pop()
        elif tag == "blockquote":
            self.flush()
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.flush()
            self.pre = max(0, self.pre - 1)
        elif tag == "a" and self.links:
            self._end_link(*self.links.pop())
        elif tag in _INLINE_MARKS and not self.pre:
            self.inline.append(_INLINE_MARKS[tag])

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.inline.append(data.replace(_BREAK, ""))

    # -- helpers ----------------------------------------------------------

    def _end_link(self, href: str | None, start: int) -> None:
        if not href or not href.startswith(_LINKABLE):
            return
        label = _SPACE.sub(" ", "".join(self.inline[start:])).strip()
        shown = href.removeprefix("mailto:").removeprefix("tel:")
        if label in (href, shown):
            return
        if not label:
            self.inline.append(href)
            return
        self.inline.append(f" [{self.refs.number(href)}]")

    def _list_item(self) -> None:
        self.flush()
        depth = max(0, len(self.lists) - 1)
        current = self.lists[-1] if self.lists else [None]
        marker = "- " if current[0] is None else f"{current[0]}. "
        if current[0] is not None:
            current[0] += 1
        pad = "  " * depth
        self.block = _Block(prefix=pad + marker, indent=pad + " " * len(marker), item=True, first=self.group_start)
        self.group_start = False

    def _new_block(self, block: _Block) -> None:
        self.flush()
        self.block = block

    def flush(self) -> None:
        raw = "".join(self.inline)
        self.inline = []
        block, self.block = self.block, _Block()
        text = _format(raw, block, "> " * self.quote)
        if text:
            self.blocks.append((text, block.item and not block.first, block.item))

    def result(self) -> str:
        """The text: blank lines between blocks, one newline between list items."""
        self.flush()
        out: list[str] = []
        previous_item = False
        for text, tight, item in self.blocks:
            if out:
                out.append("\n" if tight and previous_item else "\n\n")
            out.append(text)
            previous_item = item
        return "".join(out)


def _start(attr: dict[str, str | None]) -> int:
    try:
        return int(attr.get("start") or 1)
    except ValueError:
        return 1


def _format(raw: str, block: _Block, quote: str) -> str:
    if block.pre:
        lines = raw.replace(_BREAK, "\n").strip("\n").splitlines()
        return "\n".join(f"{quote}    {line}".rstrip() for line in lines)
    lines = [_SPACE.sub(" ", part).strip() for part in raw.split(_BREAK)]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    out = []
    for i, line in enumerate(lines):
        first = quote + (block.prefix if i == 0 else block.indent)
        rest = quote + block.indent
        out.append(textwrap.fill(line, WIDTH, initial_indent=first, subsequent_indent=rest,
                                 break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def html_to_text(html: str, refs: LinkRefs) -> str:
    """``html`` as Markdown-like text; its links are numbered in ``refs``."""
    converter = _Converter(refs)
    converter.feed(html)
    converter.close()
    return converter.result()
