"""Summaries: the first real paragraph, or a balanced cut of the first N characters."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.summary import ELLIPSIS, summarize

VOID = {"br", "img", "hr"}


# ---------------------------------------------------------------- paragraph mode


def test_first_paragraph() -> None:
    source = "<h1>T</h1>\n<p>First <em>one</em>.</p>\n<p>Second.</p>"
    assert summarize(source) == "<p>First <em>one</em>.</p>"


def test_image_only_and_empty_paragraphs_are_skipped() -> None:
    source = (
        '<p><img src="https://x/a.png" alt="a"></p><p> \n&nbsp;</p><p></p>'
        '<p><a href="https://x/b"><img src="https://x/b.png"></a><br></p>'
        '<blockquote><p class="q">Quoted <b>text</b> counts.</p></blockquote><p>Later.</p>'
    )
    assert summarize(source) == '<p class="q">Quoted <b>text</b> counts.</p>'


def test_an_unclosed_paragraph_is_closed() -> None:
    assert summarize("<p>One <b>bold <i>x</p><p>Two</p>") == "<p>One <b>bold <i>x</i></b></p>"
    source = "<div><p>Open to the end <a href='https://x/'>link"
    assert summarize(source) == "<p>Open to the end <a href='https://x/'>link</a></p>"


def test_a_paragraph_ended_by_the_next_one_stops_there() -> None:
    assert summarize("<p>One<p>Two</p>") == "<p>One</p>"


def test_scripts_styles_and_comments_are_left_out() -> None:
    source = "<p>Hi<script>alert('<p>x</p>')</script><style>p{}</style><!-- c --> there</p>"
    assert summarize(source) == "<p>Hi there</p>"


def test_no_paragraph_falls_back_to_characters() -> None:
    source = "<h2>Heading</h2><ul><li>one two three four</li></ul>"
    assert summarize(source, "paragraph", 16) == f"<h2>Heading</h2><ul><li>one two{ELLIPSIS}</li></ul>"
    assert summarize(source, "paragraph", 300) == source


# ---------------------------------------------------------------- characters mode


def test_short_text_is_kept_whole_without_ellipsis() -> None:
    source = "<p>Short <b>and</b> sweet.</p>\n<p>Two.</p>"
    assert summarize(source, "characters", 300) == source


def test_cut_on_a_word_boundary_with_tags_closed() -> None:
    source = "<p>Alpha <strong>beta gamma <em>delta epsilon</em></strong> zeta</p>"
    assert summarize(source, "characters", 22) == f"<p>Alpha <strong>beta gamma <em>delta{ELLIPSIS}</em></strong></p>"
    assert summarize(source, "characters", 24) == f"<p>Alpha <strong>beta gamma <em>delta{ELLIPSIS}</em></strong></p>"


def test_elements_left_empty_by_the_cut_are_dropped() -> None:
    source = "<p>Alpha <strong>beta gamma <em>delta epsilon</em></strong> zeta</p>"
    assert summarize(source, "characters", 20) == f"<p>Alpha <strong>beta gamma{ELLIPSIS}</strong></p>"


def test_cut_at_a_tag_when_the_next_word_does_not_fit() -> None:
    source = "<p>Alpha beta <a href='https://x/'>verylongword</a></p>"
    assert summarize(source, "characters", 14) == f"<p>Alpha beta{ELLIPSIS}</p>"


def test_a_single_long_word_is_cut_hard() -> None:
    assert summarize("<p>Supercalifragilistic</p>", "characters", 5) == f"<p>Super{ELLIPSIS}</p>"


def test_the_ellipsis_goes_where_text_is_allowed() -> None:
    source = "<div><ul><li>one two</li><li>three four</li></ul></div>"
    assert summarize(source, "characters", 7) == f"<div><ul><li>one two</li></ul>{ELLIPSIS}</div>"
    assert summarize("<ul><li>one</li><li>two</li></ul>", "characters", 3) == f"<ul><li>one</li></ul>{ELLIPSIS}"


def test_whitespace_runs_count_once_and_entities_count_as_one() -> None:
    source = "<p>a   b\n\n c &amp; d &#233;</p>"
    assert summarize(source, "characters", 11) == "<p>a b c &amp; d é</p>"
    assert summarize(source, "characters", 10) == f"<p>a b c &amp; d{ELLIPSIS}</p>"


def test_pre_keeps_its_whitespace() -> None:
    source = "<pre><code>a  b\n  c</code></pre>"
    assert summarize(source, "characters", 50) == source


def test_stray_end_tags_are_dropped() -> None:
    assert summarize("</b><p>x</i></p></div>", "characters", 10) == "<p>x</p>"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="words"):
        summarize("<p>x</p>", "words")
    with pytest.raises(ValueError, match="at least 1"):
        summarize("<p>x</p>", "characters", 0)


# ---------------------------------------------------------------- properties


class _Checker(HTMLParser):
    """Checks tags are balanced and collects the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.balanced = True
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.balanced = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check(source: str) -> _Checker:
    checker = _Checker()
    checker.feed(source)
    checker.close()
    return checker


words = st.text(alphabet="abc  &<é", min_size=0, max_size=12).map(lambda t: html.escape(t, quote=False))


@st.composite
def documents(draw: st.DrawFn, depth: int = 0) -> str:
    """Random HTML, possibly badly nested or unclosed."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "element", "void", "open", "close"] if depth < 3 else ["text", "void"]))
        tag = draw(st.sampled_from(["p", "b", "em", "a", "ul", "li", "div"]))
        if kind == "text":
            parts.append(draw(words))
        elif kind == "element":
            parts.append(f"<{tag}>{draw(documents(depth + 1))}</{tag}>")
        elif kind == "void":
            parts.append(draw(st.sampled_from(["<br>", '<img src="https://x/y.png" alt="">', "<hr/>"])))
        else:
            parts.append(f"<{tag}>" if kind == "open" else f"</{tag}>")
    return "".join(parts)


@given(documents(), st.sampled_from(["paragraph", "characters"]), st.integers(1, 40))
def test_summaries_are_balanced_and_short(source: str, mode: str, length: int) -> None:
    out = summarize(source, mode, length)
    checker = _check(out)
    assert checker.balanced and not checker.stack, out
    text = " ".join("".join(checker.text).split())
    if mode == "characters":
        assert len(text.rstrip(ELLIPSIS)) <= length, out


@given(documents(), st.integers(1, 40))
def test_the_cut_summary_is_a_prefix_of_the_text(source: str, length: int) -> None:
    out = summarize(source, "characters", length)
    summary_text = " ".join("".join(_check(out).text).split()).rstrip(ELLIPSIS).strip()
    full_text = " ".join("".join(_check(source).text).split())
    assert full_text.startswith(summary_text)
    assert out.endswith(ELLIPSIS) or ELLIPSIS in out or summary_text == full_text
