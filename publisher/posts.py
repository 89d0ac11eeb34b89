"""A post as publisher sees it, and reading one from a file.

Two source formats are read:

* the soup snip (``NAME.snip.markdown`` / ``NAME.snip.html``): the body, a
  blank line, then a trailing block of YAML attributes written ``:key: value``;
* Markdown (or HTML) with YAML front matter between ``---`` lines, as Jekyll,
  Hugo and Pelican users write it.

How the fields are found (snip attribute / front-matter key):

==============  ==========================  ===================================
field           snip                        front matter
==============  ==========================  ===================================
name            file name up to its first dot; front matter ``slug`` overrides
body_format     file extension; ``:extension: markdown|html`` overrides it and
                ``:render_as: Markdown|HTML`` overrides both (``Blog`` is a layout)
title           ``page_title``              ``title``
                (else the first heading of the body, else the name)
created_at      ``created_at``              ``date`` (or ``created_at``)
                (else the file's mtime, with ``dated_by_mtime``)
updated_at      ``updated_at``              ``updated``/``lastmod``/``updated_at``
                (else created_at)
author          ``author``                  ``author``/``authors`` (a list: its first)
kind            ``kind``                    ``kind``/``type``
tags            ``tags``: a list or comma-separated text
draft, erb      ``draft``, ``erb``: true or false
==============  ==========================  ===================================

Title, author, kind, slug and tags are text as written, even where YAML would
read a number or a boolean (``:page_title: 2012`` is the title "2012");
``attributes`` keeps every attribute as YAML reads it (dates as text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from publisher.dates import parse_date
from publisher.errors import PostError
from publisher.frontmatter import Raw, read_front_matter
from publisher.scan import POST_FORMATS, post_format
from publisher.snip import read_snip

__all__ = ["Post", "heading", "post_format", "read_post"]


@dataclass(frozen=True, slots=True)
class Post:
    path: str  # posix path relative to the posts root, e.g. "weeknotes/week-473.snip.markdown"
    name: str  # the file name up to its first dot: "week-473"
    body_format: str  # "markdown" or "html"
    body: str
    title: str
    created_at: datetime  # timezone-aware
    updated_at: datetime  # timezone-aware
    author: str | None = None
    kind: str | None = None
    tags: tuple[str, ...] = ()
    draft: bool = False
    erb: bool = False
    dated_by_mtime: bool = False  # no date in the file: the file's mtime was used
    attributes: dict[str, object] = field(default_factory=dict)  # every attribute, JSON-safe


# --- reading a post -------------------------------------------------------------------------

class _Fields:
    """Which attributes carry each field, in order of preference."""

    __slots__ = ("title", "created", "updated", "author", "kind", "slug")

    def __init__(self, *names: tuple[str, ...]) -> None:
        self.title, self.created, self.updated, self.author, self.kind, self.slug = names


_SNIP = _Fields(("page_title",), ("created_at",), ("updated_at",), ("author",), ("kind",), ())
_FRONT_MATTER = _Fields(
    ("title",), ("date", "created_at"), ("updated", "lastmod", "updated_at"), ("author", "authors"), ("kind", "type"),
    ("slug",),
)


def read_post(
    path: str, data: bytes, mtime: float, *, tz: tzinfo = timezone.utc, source: str | None = None
) -> Post:
    """Read one post file (a soup snip or a front-matter post).

    ``path`` is the posix path below the posts root (kept as ``Post.path``),
    ``data`` the file's bytes, ``mtime`` its modification time (the date of a
    post that has none), ``tz`` the timezone of times written without an
    offset, ``source`` the name used in error messages (default: ``path``).
    Raises :class:`PostError` (and nothing else) for anything wrong with the file.

    Fields read as text (title, author, kind, slug, tags) are the text as
    written even where YAML would read a number or a boolean:
    ``:page_title: 2012`` is the title ``"2012"``, ``:author: yes`` the author ``"yes"``.
    """
    try:
        return _read(path, data, mtime, tz)
    except ValueError as exc:
        raise PostError(path if source is None else source, str(exc)) from exc


def _read(path: str, data: bytes, mtime: float, tz: tzinfo) -> Post:
    body_format = post_format(path)
    if body_format is None:
        raise ValueError("not a post file name: posts end in .markdown, .md, .mdown, .html or .htm")
    text = _decode(data)
    found = read_front_matter(text)
    if found is None:
        body, attributes, raw = read_snip(text)
        fields = _SNIP
    else:
        (body, attributes, raw), fields = found, _FRONT_MATTER
    return _build(path, body_format, body, attributes, raw, fields, mtime, tz)


def _decode(data: bytes) -> str:
    """UTF-8 text with LF line ends and no byte-order mark; ValueError when that can't be."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 at byte {exc.start} ({exc.reason}): save the file as UTF-8") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text or text.isspace():
        raise ValueError("the file is empty: write the post, or delete the file")
    return text


def _build(
    path: str, body_format: str, body: str, attributes: dict[str, object], raw: Raw, fields: _Fields,
    mtime: float, tz: tzinfo,
) -> Post:
    name = (fields.slug and _slug(attributes, fields)) or path.rpartition("/")[2].partition(".")[0]
    title = _text(attributes, raw, fields.title)
    if title is None and not body.strip():
        raise ValueError("the post has no body and no title: write the post, or delete the file")
    created = _date(attributes, fields.created, tz)
    dated_by_mtime = created is None
    if created is None:
        created = _file_time(mtime, tz)
    updated = _date(attributes, fields.updated, tz) or created
    body_format = _body_format(attributes, body_format)
    return Post(
        path=path,
        name=name,
        body_format=body_format,
        body=body,
        title=title or heading(body, body_format) or name,
        created_at=created,
        updated_at=updated,
        author=_text(attributes, raw, fields.author),
        kind=_text(attributes, raw, fields.kind),
        tags=_tags(attributes, raw) if "tags" in attributes else (),
        draft="draft" in attributes and _flag(attributes, "draft"),
        erb="erb" in attributes and _flag(attributes, "erb"),
        dated_by_mtime=dated_by_mtime,
        attributes=attributes,
    )


def _file_time(mtime: float, tz: tzinfo) -> datetime:
    """The date of a post that has none: the file's modification time."""
    try:
        return datetime.fromtimestamp(mtime, tz)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"no created_at and the file time {mtime!r} is unusable: add a created_at line") from exc


def _date(attributes: dict[str, object], keys: tuple[str, ...], tz: tzinfo) -> datetime | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            try:
                return parse_date(value, tz)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from exc
    return None


def _text(attributes: dict[str, object], raw: Raw, keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` that is set, as text (a list gives its first item)."""
    for key in keys:
        value = attributes.get(key)
        if value is None:
            continue
        if value.__class__ is str:  # the common case, as _as_text reads it
            text: str | None = value.strip()
        else:
            text = _as_text_or_first(key, value, raw.get(key))
        if text:
            return text
    return None


def _as_text_or_first(key: str, value: object, written: object) -> str | None:
    """:func:`_as_text` of the value, or of its first item for a list of authors."""
    if isinstance(value, list) and key.startswith("author"):
        value, written = (value[0], written[0] if isinstance(written, list) else None) if value else (None, None)
    return _as_text(key, value, written)


def _as_text(key: str, value: object, written: object) -> str | None:
    if value is None or isinstance(value, str):
        return value.strip() if value else None
    if isinstance(value, (bool, int, float)):
        return (written if isinstance(written, str) else str(value)).strip()
    if isinstance(value, dict) and key.startswith("author"):
        return _as_text(key, value.get("name"), None)
    raise ValueError(f"{key} must be text, not a {_kind_of(value)}: write it as '{key}: some text'")


def _tags(attributes: dict[str, object], raw: Raw) -> tuple[str, ...]:
    value = attributes.get("tags")
    if value is None:
        return ()
    written = raw.get("tags")
    if isinstance(value, list):
        items = zip(value, written if isinstance(written, list) else [None] * len(value))
        texts = [_as_tag(item, item_written) for item, item_written in items]
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        texts = str(written if isinstance(written, str) else value).split(",")
    else:
        raise ValueError(f"tags must be a list or comma-separated text, not {_kind_of(value)}: write 'tags: a, b'")
    return tuple(dict.fromkeys(tag.strip() for tag in texts if tag.strip()))


def _as_tag(value: object, written: object) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("tags must be a list of words, not of lists or mappings: write 'tags: [a, b]'")
    return str(written if isinstance(written, str) else ("" if value is None else value))


def _flag(attributes: dict[str, object], key: str) -> bool:
    value = attributes.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise ValueError(f"{key} must be true or false, not {shown}")


def _slug(attributes: dict[str, object], fields: _Fields) -> str | None:
    slug = _text(attributes, {}, fields.slug)
    if slug is not None and ("/" in slug or any(ch.isspace() for ch in slug)):
        raise ValueError(f"slug {slug[:40]!r} must be one word of the address: no spaces or '/'")
    return slug


def _body_format(attributes: dict[str, object], default: str) -> str:
    """``render_as: Markdown|HTML`` beats ``extension: markdown|html`` beats the file extension."""
    render_as, extension = attributes.get("render_as"), attributes.get("extension")
    if isinstance(render_as, str) and render_as.strip().lower() in ("markdown", "html"):
        return render_as.strip().lower()
    if isinstance(extension, str) and extension.strip().lower() in POST_FORMATS:
        return POST_FORMATS[extension.strip().lower()]
    return default


def _kind_of(value: object) -> str:
    return {list: "list", dict: "mapping"}.get(type(value), type(value).__name__)


# --- titles from the body ---------------------------------------------------------------

_ATX = re.compile(r" {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(?:=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(```|~~~)")
_NOT_PARAGRAPH = re.compile(r" {4}|\t| {0,3}(?:[>#*+|<]|-[ \t]|-$|\d+[.)][ \t]|```|~~~)")
_HTML_HEADING = re.compile(r"<h([1-6])(?:\s[^>]*)?>(.*?)</h\1\s*>", re.IGNORECASE | re.DOTALL)
_INLINE = [
    (re.compile(r"!?\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])"), r"\1"),  # links and images -> their text
    (re.compile(r"<[^>]*>"), ""),  # tags (and erb) -> nothing
    (re.compile(r"\s*\{[#.][^}]*\}\s*$"), ""),  # attribute lists: "## Lunch {#lunch}"
    (re.compile(r"\*\*|__|[*`]"), ""),  # emphasis and code marks
]


def heading(body: str, body_format: str) -> str | None:
    """The text of the first heading of ``body`` (Markdown ATX/setext or HTML ``<h1>``-``<h6>``)."""
    html_match = _HTML_HEADING.search(body)
    html_at = html_match.start() if html_match else len(body)
    found = _markdown_heading(body, html_at) if body_format == "markdown" else None
    if found is None and html_match is not None:
        found = html_match.group(2)
    return _plain(found) if found is not None else None


def _markdown_heading(body: str, limit: int) -> str | None:
    """The first Markdown heading that starts before offset ``limit`` (fenced code skipped)."""
    fence, previous, offset = "", "", 0
    for line in body.split("\n"):
        if offset > limit:
            return None
        offset += len(line) + 1
        if fence:
            fence = "" if line.strip().startswith(fence) else fence
            continue
        if opened := _FENCE.match(line):
            fence, previous = opened.group(1), ""
            continue
        if atx := _ATX.fullmatch(line):
            if atx.group(1):
                return atx.group(1)
        elif previous and _SETEXT.fullmatch(line):
            return previous
        previous = line if line.strip() and not _NOT_PARAGRAPH.match(line) else ""
    return None


def _plain(text: str) -> str | None:
    """Heading markup -> plain one-line text (links to their words, tags dropped, entities decoded)."""
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    import html

    return " ".join(html.unescape(text).split()) or None
