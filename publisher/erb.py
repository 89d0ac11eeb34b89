"""ERB tags in post bodies: find them, parse helper calls, swap them for placeholders.

Soup snips written with ``:erb: true`` hold Rails view helpers such as
``<%= by('chris-roos') %>`` or ``<%= image_tag('blog/x.jpg', alt: 'A') %>``.
The Ruby code is NEVER executed: each tag is read with a small parser that
understands one helper call with literal arguments (strings, numbers, symbols,
``true``/``false``/``nil``, ``key: value`` and ``:key => value`` hash
arguments) and nothing else.

Rendering a post then goes in three steps (see :mod:`publisher.render`):

1. :func:`protect` replaces every tag with an inert alphanumeric placeholder
   token (or drops it), asking a callback for each tag's HTML output;
2. the body is converted (Markdown placeholders survive untouched);
3. :func:`restore` puts each output back where its token sits, escaped for
   that place: raw HTML in ordinary text, escaped text inside ``<code>``,
   ``<pre>`` and the like, a plain value inside an attribute.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from publisher.urls import SplicingParser, start_tag

Value = str | int | float | bool | None

# Elements whose text is shown literally (or not parsed as HTML): a shortcode
# placed there is shown as escaped source, as ERB-then-Markdown would have done.
_LITERAL_CONTEXTS = frozenset({"code", "pre", "kbd", "samp", "script", "style", "textarea", "title"})
_TOKEN_STEM = "zqerb"


class ErbSyntaxError(ValueError):
    """The code in an ERB tag is not one helper call with literal arguments."""


@dataclass(frozen=True, slots=True)
class Call:
    """A parsed helper call: ``image_tag('x.jpg', alt: 'A')``."""

    name: str
    args: tuple[Value, ...] = ()
    kwargs: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tag:
    """One ERB tag found in a body.

    ``marker`` is ``"="`` for an output tag (``<%= %>``), ``"#"`` for a
    comment and ``""`` for a statement (``<% end %>``); ``code`` is what sits
    between the delimiters, stripped.
    """

    source: str
    marker: str
    code: str

    def call(self) -> Call:
        """The helper call of an output tag; ErbSyntaxError for anything else."""
        if self.marker != "=":
            raise ErbSyntaxError("not an output tag (<%= ... %>)")
        return parse_call(self.code)

    def describe(self) -> str:
        """The helper's name when the tag parses, else its (shortened) source."""
        try:
            return self.call().name
        except ErbSyntaxError:
            return self.source if len(self.source) <= 60 else self.source[:57] + "..."


@dataclass(frozen=True, slots=True)
class Protected:
    """A body whose ERB tags were replaced by placeholder tokens."""

    text: str
    prefix: str  # every token is prefix + index + "z" (matched case-insensitively)
    outputs: tuple[str, ...]  # the HTML to put back for token i

    def token(self, index: int) -> str:
        return f"{self.prefix}{index}z"

    def pattern(self) -> re.Pattern[str]:
        # HTMLParser lowercases tag and attribute names: tokens are lowercase, matched in any case.
        return re.compile(re.escape(self.prefix) + r"(\d+)z", re.IGNORECASE)


# ---------------------------------------------------------------- finding tags


def iter_tags(text: str) -> Iterator[tuple[int, int, Tag | None]]:
    """Yield ``(start, end, tag)`` for each ``<% ... %>`` in ``text``.

    ``tag`` is None for ERB's escape ``<%%`` (a literal ``<%``).  An opening
    ``<%`` without a closing ``%>`` is left alone (it is plain text).
    """
    pos = 0
    while (start := text.find("<%", pos)) != -1:
        if text.startswith("<%%", start):
            yield start, start + 3, None
            pos = start + 3
            continue
        end = text.find("%>", start + 2)
        if end == -1:
            return
        yield start, end + 2, _make_tag(text[start : end + 2])
        pos = end + 2


def _make_tag(source: str) -> Tag:
    inner = source[2:-2]
    marker = inner[:1] if inner[:1] in ("=", "#") else ""
    inner = inner[len(marker) :]
    if not marker and inner.startswith("-"):
        inner = inner[1:]
    if inner.endswith("-"):
        inner = inner[:-1]
    return Tag(source=source, marker=marker, code=inner.strip())


def protect(text: str, render: Callable[[Tag], str | None]) -> Protected:
    """Replace each ERB tag in ``text`` with a placeholder token.

    ``render(tag)`` returns the tag's HTML output, or None to drop the tag.  A
    dropped tag that stood alone on its line takes the line with it.
    """
    prefix = _unused_prefix(text)
    pieces: list[str] = []
    outputs: list[str] = []
    pos = 0
    for start, end, tag in iter_tags(text):
        pieces.append(text[pos:start])
        pos = end
        if tag is None:
            pieces.append("<%")
            continue
        output = render(tag)
        if output is None:
            pos = _drop_line_if_alone(text, pieces, end)
            continue
        pieces.append(f"{prefix}{len(outputs)}z")
        outputs.append(output)
    pieces.append(text[pos:])
    return Protected(text="".join(pieces), prefix=prefix, outputs=tuple(outputs))


def _unused_prefix(text: str) -> str:
    prefix = _TOKEN_STEM
    folded = text.lower()
    while prefix in folded:
        prefix += "q"
    return prefix


def _drop_line_if_alone(text: str, pieces: list[str], end: int) -> int:
    """After dropping a tag: if only blanks surround it on its line, drop the line too.

    Returns where the copying of ``text`` resumes.
    """
    before = pieces[-1]
    newline_before = before.rfind("\n")
    if newline_before == -1 and len(pieces) > 1:
        return end  # something kept earlier on this line
    newline_after = text.find("\n", end)
    tail_end = len(text) if newline_after == -1 else newline_after
    if before[newline_before + 1 :].strip() or text[end:tail_end].strip():
        return end
    pieces[-1] = before[: newline_before + 1]
    return tail_end if newline_after == -1 else newline_after + 1


# ---------------------------------------------------------------- restoring


def restore(html_text: str, protected: Protected) -> str:
    """Put each placeholder's output back into converted HTML, escaped for where it sits."""
    if not protected.outputs:
        return html_text
    return _Restorer(protected).run(html_text)


class _Restorer(SplicingParser):
    def __init__(self, protected: Protected) -> None:
        super().__init__()
        self._outputs = protected.outputs
        self._pattern = protected.pattern()
        self._literal_depth = 0

    def _output(self, match: re.Match[str]) -> str:
        index = int(match.group(1))
        return self._outputs[index] if index < len(self._outputs) else ""

    def _as_text(self, match: re.Match[str]) -> str:
        return html.unescape(self._output(match))

    def _escaped(self, match: re.Match[str]) -> str:
        return html.escape(self._as_text(match), quote=False)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LITERAL_CONTEXTS and not self.self_closing():
            self._literal_depth += 1
        self.handle_startendtag(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Tokens in attribute values become the output's text; in names, nothing."""
        raw = self.get_starttag_text() or ""
        if not self._pattern.search(raw):
            return
        if self._pattern.search(self.raw_tag_name(tag)):  # "<<%= x %>>": it was never a tag
            self.replace_start_tag("&lt;" + self._pattern.sub(self._escaped, raw[1:]))
            return
        new_attrs = [
            (self._pattern.sub("", name), None if value is None else self._pattern.sub(self._as_text, value))
            for name, value in attrs
        ]
        self.replace_start_tag(start_tag(self.raw_tag_name(tag), [a for a in new_attrs if a[0]], self.self_closing()))

    def handle_endtag(self, tag: str) -> None:
        if tag in _LITERAL_CONTEXTS and self._literal_depth:
            self._literal_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._pattern.search(data):
            replace = self._escaped if self._literal_depth else self._output
            self.replace_here(len(data), self._pattern.sub(replace, data))

    def fill_gap(self, text: str) -> str:
        """Tokens anywhere else (comments, declarations): escaped text."""
        return self._pattern.sub(self._escaped, text) if self._pattern.search(text) else text


# ---------------------------------------------------------------- parsing Ruby

_RUBY_TOKENS = r"""
    (?P<ws>\s+)
  | (?P<sq>'(?:[^'\\]|\\.)*')
  | (?P<dq>"(?:[^"\\]|\\.)*")
  | (?P<sym>:(?:[A-Za-z_][A-Za-z0-9_]*[?!=]?|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))
  | (?P<label>[A-Za-z_][A-Za-z0-9_]*[?!]?:(?!:))
  | (?P<num>[-+]?\d[\d_]*(?:\.\d[\d_]*)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*[?!]?)
  | (?P<arrow>=>)
  | (?P<punct>[(),{}:])
"""
_KEYWORDS: dict[str, Value] = {"true": True, "false": False, "nil": None}
_DQ_ESCAPES = {
    "n": "\n", "t": "\t", "s": " ", "r": "\r", "0": "\0", "e": "\x1b", "a": "\a", "b": "\b", "f": "\f", "v": "\v"
}
_DQ_ESCAPE = r"\\(u\{[0-9A-Fa-f ]+\}|u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{1,2}|.)"


@functools.cache
def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    """Patterns compiled on first use, to keep importing this module cheap."""
    return re.compile(pattern, flags)


def _lex(code: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(code):
        match = _compiled(_RUBY_TOKENS, re.VERBOSE | re.DOTALL).match(code, pos)
        if match is None:
            raise ErbSyntaxError(f"unexpected {code[pos:pos + 10]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((match.group() if kind == "punct" else kind, match.group()))
        pos = match.end()
    return tokens


def parse_call(code: str) -> Call:
    """Parse ``name(args)`` or ``name args`` with literal arguments only."""
    tokens = _lex(code)
    if not tokens or tokens[0][0] != "ident" or tokens[0][1] in _KEYWORDS:
        raise ErbSyntaxError("not a helper call")
    name, rest = tokens[0][1], tokens[1:]
    if rest and rest[0][0] == "(":
        if rest[-1][0] != ")":
            raise ErbSyntaxError("unbalanced parentheses")
        rest = rest[1:-1]
    args, kwargs = _ArgParser(rest).arguments()
    return Call(name=name, args=args, kwargs=kwargs)


class _ArgParser:
    """Recursive descent over the argument tokens of one call."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._pos = 0

    def _peek(self, offset: int = 0) -> str:
        index = self._pos + offset
        return self._tokens[index][0] if index < len(self._tokens) else ""

    def _take(self) -> tuple[str, str]:
        if self._pos >= len(self._tokens):
            raise ErbSyntaxError("unexpected end of arguments")
        self._pos += 1
        return self._tokens[self._pos - 1]

    def _expect(self, kind: str) -> None:
        if self._take()[0] != kind:
            raise ErbSyntaxError(f"expected {kind!r}")

    def arguments(self) -> tuple[tuple[Value, ...], dict[str, Value]]:
        args: list[Value] = []
        kwargs: dict[str, Value] = {}
        while self._peek():
            if self._peek() == "{":
                self._take()
                self._pairs(kwargs, closing="}")
            elif self._starts_pair():
                self._pair(kwargs)
            elif kwargs:
                raise ErbSyntaxError("positional argument after keyword arguments")
            else:
                args.append(self._value())
            if self._peek():
                self._expect(",")
        return tuple(args), kwargs

    def _pairs(self, kwargs: dict[str, Value], closing: str) -> None:
        while self._peek() != closing:
            self._pair(kwargs)
            if self._peek() != closing:
                self._expect(",")
        self._take()

    def _starts_pair(self) -> bool:
        if self._peek() == "label":
            return True
        if self._peek() in ("sq", "dq") and self._peek(1) == ":":
            return True
        return self._peek() in ("sq", "dq", "sym", "num", "ident") and self._peek(1) == "arrow"

    def _pair(self, kwargs: dict[str, Value]) -> None:
        kind, text = self._tokens[self._pos]
        if kind == "label":
            self._take()
            key: Value = text[:-1]
        else:
            key = self._value()
            self._take()  # ":" or "=>"
        kwargs[str(key)] = self._value()

    def _value(self) -> Value:
        kind, text = self._take()
        if kind == "sq":
            return _single_quoted(text[1:-1])
        if kind == "dq":
            return _double_quoted(text[1:-1])
        if kind == "sym":
            return _symbol(text[1:])
        if kind == "num":
            return _number(text)
        if kind == "ident" and text in _KEYWORDS:
            return _KEYWORDS[text]
        raise ErbSyntaxError(f"{text!r} is not a literal value")


def _single_quoted(body: str) -> str:
    return re.sub(r"\\([\\'])", r"\1", body)


def _double_quoted(body: str) -> str:
    if re.search(r"(?<!\\)(?:\\\\)*#[{@$]", body):
        raise ErbSyntaxError("string interpolation is not supported")
    return _compiled(_DQ_ESCAPE, re.DOTALL).sub(_dq_escape, body)


def _dq_escape(match: re.Match[str]) -> str:
    escape = match.group(1)
    if escape.startswith("u{"):
        return "".join(chr(int(code, 16)) for code in escape[2:-1].split())
    if escape[0] in "ux" and len(escape) > 1:
        return chr(int(escape[1:], 16))
    return _DQ_ESCAPES.get(escape, escape)


def _symbol(body: str) -> str:
    if body[:1] == "'":
        return _single_quoted(body[1:-1])
    if body[:1] == '"':
        return _double_quoted(body[1:-1])
    return body


def _number(text: str) -> int | float:
    text = text.replace("_", "")
    return float(text) if "." in text else int(text)
