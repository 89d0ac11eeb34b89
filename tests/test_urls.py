"""Making URLs in HTML absolute."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from publisher.urls import absolute_srcset, absolute_url, absolutize

POST = "https://gofreerange.com/blog/week-473"
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("#gds", "https://gofreerange.com/blog/week-473#gds"),
        ("/week-473#gds", "https://gofreerange.com/week-473#gds"),
        ("x.jpg", "https://gofreerange.com/blog/x.jpg"),
        ("../up.html", "https://gofreerange.com/up.html"),
        ("?page=2", "https://gofreerange.com/blog/week-473?page=2"),
        ("", "https://gofreerange.com/blog/week-473"),
        ("//cdn.example.com/x.js", "https://cdn.example.com/x.js"),
        ("  /spaced \n", "https://gofreerange.com/spaced"),
        ("/split\n/path", "https://gofreerange.com/split/path"),
        ("mailto:hello@example.org", "mailto:hello@example.org"),
        (" mailto:hello@example.org ", "mailto:hello@example.org"),
        ("tel:+44 20 7946 0000", "tel:+44 20 7946 0000"),
        ("data:image/png;base64,iVBO", "data:image/png;base64,iVBO"),
        ("http://old.example.com/a", "http://old.example.com/a"),
        ("HTTPS://Loud.example.com/", "HTTPS://Loud.example.com/"),
        ("https:relative-looking", "https:relative-looking"),
        ("javascript:void(0)", "javascript:void(0)"),
    ],
)
def test_absolute_url(url: str, expected: str) -> None:
    assert absolute_url(url, POST) == expected


def test_protocol_relative_takes_the_base_scheme() -> None:
    assert absolute_url("//cdn.example.com/x", "http://example.org/") == "http://cdn.example.com/x"


def test_the_go_free_range_regex_cases_are_fixed() -> None:
    """Their regex prefixed the host to '#x' and 'mailto:' links, breaking them."""
    out = absolutize('<a href="#gds">a</a> <a href="mailto:x@example.org">b</a>', POST)
    assert out == (
        '<a href="https://gofreerange.com/blog/week-473#gds">a</a> <a href="mailto:x@example.org">b</a>'
    )


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.png 1x, /b.png 2x", "https://gofreerange.com/blog/a.png 1x, https://gofreerange.com/b.png 2x"),
        ("a.png", "https://gofreerange.com/blog/a.png"),
        ("a.png, b.png 2x", "https://gofreerange.com/blog/a.png, https://gofreerange.com/blog/b.png 2x"),
        # as in the HTML spec, a comma inside a URL does not split it
        ("a.png,b.png 2x", "https://gofreerange.com/blog/a.png,b.png 2x"),
        (
            "  a.png   100w ,  b.png  200w  ",
            "https://gofreerange.com/blog/a.png 100w, https://gofreerange.com/blog/b.png 200w",
        ),
        (
            "data:image/png;base64,AAA 1x, c.png 2x",
            "data:image/png;base64,AAA 1x, https://gofreerange.com/blog/c.png 2x",
        ),
        ("", ""),
    ],
)
def test_absolute_srcset(srcset: str, expected: str) -> None:
    assert absolute_srcset(srcset, POST) == expected


def test_every_url_attribute_is_resolved() -> None:
    source = (
        '<a href="a">x</a><img src="b" srcset="c 2x"><video poster="d"></video><q cite="e">q</q>'
        '<form action="f"><button formaction="g">b</button></form><td background="h"></td>'
        '<img longdesc="i" usemap="j"><object data="k"></object><svg><a xlink:href="l"></a></svg>'
    )
    out = absolutize(source, "https://example.org/dir/page")
    for letter in "abcdefghijkl":
        assert f'"https://example.org/dir/{letter}' in out, letter


def test_usemap_hash_references_stay_local() -> None:
    source = '<img src="m.png" usemap="#areas"><map name="areas"></map>'
    expected = '<img src="https://gofreerange.com/blog/m.png" usemap="#areas"><map name="areas"></map>'
    assert absolutize(source, POST) == expected


def test_everything_else_is_copied_byte_for_byte() -> None:
    source = (
        "<!DOCTYPE html>\n<p class='a'  id=b>Caf&eacute; &amp &#233; &#xe9; <b>x</b></p>\n"
        "<!-- <a href='/in-comment'>c</a> -->\n<?php echo 1 ?>\n<![CDATA[ <a href=x> ]]>\n"
        '<script>var s = "<a href=\'/js\'>";</script><style>a[href="/css"]{}</style>\n'
        "<a href='https://abs.example.com/' TITLE='T'>abs</a> <br/> <IMG SRC=https://x.example/y>\n"
        "<a data-href='/not-a-url-attribute' href=\"mailto:a@b\">m</a>"
    )
    assert absolutize(source, POST) == source


def test_only_the_changed_tag_is_rewritten() -> None:
    source = "<p title='keep &amp; quote'>x</p>\n<a class=z href=/rel title='It&#39;s'>r</a><br />"
    out = absolutize(source, POST)
    assert out == (
        "<p title='keep &amp; quote'>x</p>\n"
        '<a class="z" href="https://gofreerange.com/rel" title="It\'s">r</a><br />'
    )


def test_self_closing_and_attribute_escaping_survive_a_rewrite() -> None:
    out = absolutize('<img src="a b.png" alt="&quot;q&quot; &lt;x&gt;"/>', POST)
    assert out == '<img src="https://gofreerange.com/blog/a b.png" alt="&quot;q&quot; &lt;x&gt;" />'


def test_positions_survive_multiline_sources() -> None:
    source = "line one\n\n  <a\n href='x'\n>x</a>\n<p>\u00e9\u4e2d</p><img src=y>\n"
    out = absolutize(source, POST)
    assert out == (
        'line one\n\n  <a href="https://gofreerange.com/blog/x">x</a>\n'
        '<p>\u00e9\u4e2d</p><img src="https://gofreerange.com/blog/y">\n'
    )


def test_the_base_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="not absolute"):
        absolutize('<a href="x">x</a>', "/blog/week-473")


# ---------------------------------------------------------------- properties


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if name == "href" and value is not None]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _read(source: str) -> _Reader:
    reader = _Reader()
    reader.feed(source)
    reader.close()
    return reader


_url_parts = st.sampled_from(
    ["", "/", "#", "?", "..", ".", "//", ":", "x", "path", "a b", "&", "%20", "mailto:", "tel:", "data:",
     "https://", "HTTP:", "\t", " ", "\n", "\x00", "é", '"', "'", "<", ">", "=", "@"]
)
urls = st.one_of(st.text(max_size=30), st.lists(_url_parts, max_size=6).map("".join))
texts = st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=20)


@given(st.lists(st.tuples(urls, texts), min_size=1, max_size=5), texts)
@example([("mailto:x@example.org", "m"), ("#frag", "f"), ("\x01mailto:x", "c")], "tail")
def test_every_href_comes_out_absolute_and_the_text_unchanged(links: list[tuple[str, str]], tail: str) -> None:
    source = "".join(f'<a href="{html.escape(url)}">{text}</a>' for url, text in links) + tail
    out = _read(absolutize(source, POST))
    for (url, _), href in zip(links, out.hrefs, strict=True):
        untouched = href == url and href.lower().startswith(("mailto:", "tel:", "data:"))
        assert SCHEME.match(href) or untouched, (url, href)
    assert "".join(out.text) == "".join(_read(source).text)


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_keeps_its_text(source: str) -> None:
    out = absolutize(source, POST)
    assert "".join(_read(out).text) == "".join(_read(source).text)
