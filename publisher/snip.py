"""The soup snip format: a body, a blank line, then a trailing block of ``:key: value`` lines.

::

    Some **Markdown** body.

    :created_at: 2018-02-09 15:07:08.358001000 +00:00
    :page_title: Week 473
    :images:
      - a.jpg

The attribute block is found by scanning from the END of the text: it is the
trailing run of groups of attribute lines (``:key:`` at the start of a line)
and their continuation lines (indented, or ``- item``), the groups separated by
blank lines, where each group starts with an attribute line and is preceded by
a blank line or the start of the file.  A ``:smile:`` line inside the body is
therefore body, and so is a group glued to the paragraph above it.

Values are YAML.  Simple one-line values (plain text, quoted text, true/false,
integers, null) are read by a small parser that gives exactly what PyYAML would
give; any other block (continuation lines, ``[..]``, ``{..}``, ``|``, anchors,
tags, floats, ...) is handed whole to PyYAML (:func:`publisher.frontmatter.load_mapping`).
Dates stay text on both paths (see :mod:`publisher.dates`).

Most posts end the same way: the body, an empty line, one paragraph of simple
``:key: value`` lines.  :func:`read_snip` reads that shape line by line, each
distinct line once (``:render_as: Blog`` recurs in every post), without
:func:`find_block` and its regex over the block; anything else goes to the
general reader, which gives the same result (tests/test_parse_fast_paths.py).
"""

from __future__ import annotations

import re

from publisher.frontmatter import Raw, load_mapping

__all__ = ["NOT_SIMPLE", "parse_scalar", "read_snip", "split_snip"]

_KEY = r"[A-Za-z0-9_][A-Za-z0-9_.?!-]*"
_ATTRIBUTE = re.compile(rf":{_KEY}:(?:[ \t]|$)")
_SIMPLE_LINES = re.compile(rf"^:({_KEY}):(?: +(.*))?$", re.MULTILINE)
_SIMPLE_LINE = re.compile(rf":({_KEY}):(?: +(.*))?")  # one line of _SIMPLE_LINES (fullmatch)
_GROUP = re.compile(
    rf":{_KEY}:(?:[ \t][^\n]*)?(?:\n(?::{_KEY}:(?:[ \t][^\n]*)?|[ \t]+[^ \t\n][^\n]*|-(?:[ \t][^\n]*)?))*"
)
_WHITE_LINE = re.compile(r"\n[ \t]+(?:\n|$)")
_KNOWN: dict[str, object] = {}  # value text -> value: "Blog", "true", "markdown" recur in every post
_KNOWN_MAX = 4096
_KNOWN_LINES: dict[str, tuple[str, object, str | None]] = {}  # ":kind: blog" -> ("kind", "blog", None)
_LINES_OF_KEY: dict[str, int] = {}  # key -> how many of its lines were remembered (see _read_lines)
_UNIQUE_AFTER = 1024  # a key with this many lines remembered (a date, a title) has its lines forgotten
_KNOWN_KEYS: dict[str, str] = {}  # ":kind" -> "kind": what a simple line has before its first ": "
# Characters YAML refuses or treats as line breaks, and tabs (YAML's rules for them are subtle).
_AWKWARD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"')
_SINGLE_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})", re.ASCII)
# A year and a dash: no YAML number has a "-" after a digit (but in an exponent, after "e").
_YEAR_DASH = re.compile(r"[0-9]{4}-")
# PyYAML's implicit int and float rules (YAML 1.1): values they match go to PyYAML.
# Compiled when first needed (see _yaml_number): it is the slowest of these to compile.
_YAML_NUMBER_RULES = r"""[-+]?0b[0-1_]+|[-+]?0[0-7_]*|[-+]?[1-9][0-9_]*|[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"""
_YAML_NUMBER: re.Pattern[str] | None = None
_WORDS: dict[str, object] = {
    **dict.fromkeys(["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"], True),
    **dict.fromkeys(["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"], False),
    **dict.fromkeys(["null", "Null", "NULL", "~"], None),
}
_NEVER_PLAIN = frozenset(",[]{}#&*!|>%@`=<")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_LETTERS_DIGITS = _LETTERS | frozenset("0123456789")


class _NotSimple:
    def __repr__(self) -> str:
        return "NOT_SIMPLE"


#: What :func:`parse_scalar` returns for a value it leaves to PyYAML.
NOT_SIMPLE = _NotSimple()


def split_snip(text: str) -> tuple[str, dict[str, object]]:
    """``(body, attributes)``: attribute keys without their colons; ValueError if the block is broken."""
    body, attributes, _raw = read_snip(text)
    return body, attributes


def read_snip(text: str) -> tuple[str, dict[str, object], Raw]:
    """``(body, attributes, raw)`` of LF-only ``text``.

    ``raw`` maps keys whose value is not text to the plain text written
    (``:page_title: 2012`` -> ``"2012"``).
    """
    common = _common_block(text)
    if common is not None:
        start, end, body_end = common
        parsed = _read_lines(text[start:end].split("\n"))
        if parsed is not None:
            return _body(text, body_end), parsed[0], parsed[1]
    return _read_any(text)


def _read_any(text: str) -> tuple[str, dict[str, object], Raw]:
    """:func:`read_snip` for any shape (the common one too, more slowly)."""
    start = find_block(text)
    if start < 0:
        return _body(text, len(text)), {}, {}
    block = text[start:]
    parsed = _parse_simple(block)
    if parsed is None:
        parsed = _parse_yaml(block, text.count("\n", 0, start) + 1)
    return _body(text, start), parsed[0], parsed[1]


def _body(text: str, end: int) -> str:
    """``text[:end]`` without the empty lines around it or the trailing white space."""
    while end > 0 and text[end - 1] in " \t\n":
        end -= 1
    begin = 0
    while begin < end and text[begin] == "\n":
        begin += 1
    return text[begin:end]


def _common_block(text: str) -> tuple[int, int, int] | None:
    """``(start, end, body_end)`` of the last paragraph if ``text`` may have the common shape, else None.

    The common shape: the last paragraph (after the last empty line; only line
    ends after it) is all simple attribute lines (``:key:``, then spaces and the
    value, or nothing), and the paragraph above it cannot join the block: it
    starts with neither ":", a space nor a tab and has no line of blanks.  This
    checks all but the lines of the last paragraph (:func:`_read_lines` reads
    those, or gives up); when they are simple, ``start`` is :func:`find_block`'s.
    Only line ends come between ``body_end`` and ``start``.
    """
    end = len(text)
    while end and text[end - 1] == "\n":
        end -= 1
    gap = text.rfind("\n\n", 0, end)
    if gap < 0 or text[gap + 2] != ":":
        return None
    above_end = gap
    while above_end and text[above_end - 1] == "\n":
        above_end -= 1
    if not above_end:
        return gap + 2, end, 0  # only empty lines above: the file is all attributes
    above_gap = text.rfind("\n\n", 0, above_end)
    above = above_gap + 2 if above_gap >= 0 else len(text) - len(text.lstrip("\n"))
    if text[above] in ": \t" or _WHITE_LINE.search(text, above - 1 if above else 0, above_end):
        return None  # the paragraph above may be attributes, or the block a line-by-line question
    return gap + 2, end, above_end


def find_block(text: str) -> int:
    """Offset where the trailing attribute block starts, or -1 when there is none.

    Paragraphs (split at empty lines) are checked from the end with one regex
    each; a paragraph holding a line of only spaces/tabs is left to the
    line-by-line :func:`_scan_block`, which gives the same answer more slowly.
    """
    accepted = -1
    end = len(text.rstrip(" \t\n"))
    while end > 0:
        gap = text.rfind("\n\n", 0, end)
        start = gap + 2 if gap >= 0 else len(text) - len(text.lstrip("\n"))
        if not _GROUP.fullmatch(text, start, end):
            if _WHITE_LINE.search(text, start - 1 if start else 0, end) or text[start] in " \t":
                return _scan_block(text)  # a line of blanks splits this paragraph: go line by line
            return accepted
        accepted = end = start
        while end > 0 and text[end - 1] == "\n":
            end -= 1
    return accepted


def _scan_block(text: str) -> int:
    """:func:`find_block` line by line (lines of spaces and tabs count as empty)."""
    accepted = -1
    group_top = -1  # start of the group being read upwards (-1: between groups)
    opened = False  # the group's top line read so far is an attribute line
    stop = len(text)
    while stop >= 0:
        start = text.rfind("\n", 0, stop) + 1
        line = text[start:stop]
        if not line.strip(" \t"):
            if group_top >= 0:
                if not opened:
                    return accepted
                accepted, group_top = group_top, -1
        elif line[0] == ":" and _ATTRIBUTE.match(line):
            group_top, opened = start, True
        elif line[0] in " \t" or line[0] == "-" and (len(line) == 1 or line[1] in " \t"):
            group_top, opened = start, False
        else:
            return accepted
        stop = start - 1
    return group_top if group_top >= 0 and opened else accepted


def _parse_simple(block: str) -> tuple[dict[str, object], Raw] | None:
    """The block read by the fast parser, or None when a line needs PyYAML."""
    if "\n " in block or "\n\t" in block or "\n-" in block:
        return None  # continuation lines
    pairs = _SIMPLE_LINES.findall(block)
    if len(pairs) != block.count("\n:") + 1:
        return None  # an attribute line the fast parser does not read (a tab after the key...)
    return _read_pairs(pairs)


def _read_pairs(pairs: list[tuple[str, str]]) -> tuple[dict[str, object], Raw] | None:
    """``(key, value text)`` pairs read by :func:`parse_scalar`, or None when a value needs PyYAML."""
    attributes: dict[str, object] = {}
    raw: Raw = {}
    for key, text in pairs:
        value = _read_value(text)
        if value is NOT_SIMPLE:
            return None
        attributes[key] = value
        if value is not None and value.__class__ is not str:
            raw[key] = text.rstrip(" ")
    return attributes, raw


def _read_value(text: str) -> object:
    """:func:`parse_scalar` of a value as the line regex gives it (trailing spaces and all), remembered."""
    value = _KNOWN.get(text, NOT_SIMPLE)
    if value is NOT_SIMPLE:
        value = parse_scalar(text.rstrip(" "))
        if value is not NOT_SIMPLE and len(_KNOWN) < _KNOWN_MAX:
            _KNOWN[text] = value
    return value


def _read_lines(lines: list[str]) -> tuple[dict[str, object], Raw] | None:
    """What :func:`_parse_simple` makes of these lines, or None unless each is a simple attribute line.

    Lines are remembered whole, ``:render_as: Blog`` recurs in every post, but
    not those of a key whose lines do not recur (``:created_at: ...``).
    """
    attributes: dict[str, object] = {}
    raw: Raw = {}
    known = _KNOWN_LINES
    for line in lines:
        read = known.get(line)
        if read is None:
            read = _read_line(line)
            if read is None:
                return None
            _remember(line, read)
        key, value, written = read
        attributes[key] = value
        if written is not None:
            raw[key] = written
    return attributes, raw


def _remember(line: str, read: tuple[str, object, str | None]) -> None:
    remembered = _LINES_OF_KEY.get(read[0], 0)
    if remembered < _UNIQUE_AFTER and len(_LINES_OF_KEY) < _KNOWN_MAX:
        _LINES_OF_KEY[read[0]] = remembered + 1
        if len(_KNOWN_LINES) >= _KNOWN_MAX:
            _KNOWN_LINES.clear()  # a long build: keep remembering what recurs from here on
        _KNOWN_LINES[line] = read


def _read_line(line: str) -> tuple[str, object, str | None] | None:
    """``(key, value, raw text or None)`` of one simple attribute line; None for any other line."""
    head, space, text = line.partition(": ")  # ":key" and the value, when the key is followed by a space
    key = _KNOWN_KEYS.get(head) if space else None
    if key is None:
        match = _SIMPLE_LINE.fullmatch(line)
        if match is None:
            return None
        key, text = match.group(1), match.group(2) or ""
        if match.group(2) is not None and len(_KNOWN_KEYS) < _KNOWN_MAX:  # head is ":" + key: remember it
            _KNOWN_KEYS[head] = key
    else:
        text = text.lstrip(" ")
    value = parse_scalar(text.rstrip(" "))
    if value is NOT_SIMPLE:
        return None
    return key, value, (text.rstrip(" ") if value is not None and value.__class__ is not str else None)


def parse_scalar(text: str) -> object:
    """One YAML scalar written on one line (already stripped), as PyYAML's safe loader reads it.

    Gives str, bool, int or None, or :data:`NOT_SIMPLE` for anything it does
    not handle (which then goes to PyYAML).  Dates stay text.
    """
    if not text:
        return None
    first = text[0]
    if first in _LETTERS_DIGITS and text.isprintable() and ": " not in text and " #" not in text and text[-1] != ":":
        # the common cases, read as _parse_scalar reads them: a word or title, a date
        if first in _LETTERS:
            return _WORDS.get(text, text) if len(text) <= 5 else text
        if _YEAR_DASH.match(text):
            return text
    return _parse_scalar(text)


def _parse_scalar(text: str) -> object:
    """:func:`parse_scalar` for any text but the empty one."""
    first = text[0]
    if not text.isprintable() and _AWKWARD.search(text):  # every awkward character is unprintable
        return NOT_SIMPLE
    if first == '"' or first == "'":
        return _quoted(text)
    if first in _NEVER_PLAIN or ": " in text or " #" in text or text[-1] == ":":
        return NOT_SIMPLE
    if first in "-?:" and (len(text) == 1 or text[1] == " "):
        return NOT_SIMPLE
    if first in "0123456789+-.":
        if _YEAR_DASH.match(text):
            return text  # a date (or text that starts like one)
        if _DECIMAL.fullmatch(text):
            return int(text)
        return NOT_SIMPLE if _yaml_number().fullmatch(text) else text
    return _WORDS.get(text, text) if len(text) <= 5 else text


def _yaml_number() -> re.Pattern[str]:
    global _YAML_NUMBER
    if _YAML_NUMBER is None:
        _YAML_NUMBER = re.compile(_YAML_NUMBER_RULES, re.VERBOSE)
    return _YAML_NUMBER


def _quoted(text: str) -> object:
    match = (_DOUBLE_QUOTED if text[0] == '"' else _SINGLE_QUOTED).fullmatch(text)
    if match is None:
        return NOT_SIMPLE
    return match.group(1) if text[0] == '"' else match.group(1).replace("''", "'")


def _parse_yaml(block: str, line: int) -> tuple[dict[str, object], Raw]:
    """The slow path: the whole block through PyYAML; keys lose their leading colon."""
    data, raw = load_mapping(block, first_line=line, what="attributes")
    return {_bare(key): value for key, value in data.items()}, {_bare(key): text for key, text in raw.items()}


def _bare(key: str) -> str:
    return key[1:] if key.startswith(":") else key
