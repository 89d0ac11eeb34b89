"""Post HTML as readable text for a digest's text part."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from publisher.digest.text import WIDTH, LinkRefs, html_to_text


def text(html: str, refs: LinkRefs | None = None) -> str:
    return html_to_text(html, refs if refs is not None else LinkRefs())


def test_paragraphs_are_separated_by_blank_lines_and_rewrapped():
    html = "<p>One\nsentence   split\nover lines.</p>\n<p>" + "word " * 40 + "</p>"
    out = text(html)
    first, second = out.split("\n\n")
    assert first == "One sentence split over lines."
    assert all(len(line) <= WIDTH for line in second.splitlines()) and len(second.splitlines()) > 1


def test_links_are_numbered_and_listed_once_per_url():
    refs = LinkRefs()
    out = text('<p><a href="https://a.example/x">first</a>, <a href="https://b.example/">second</a> and '
               '<a href="https://a.example/x">first again</a>.</p>', refs)
    assert out == "first [1], second [2] and first again [1]."
    assert refs.since(0) == [(1, "https://a.example/x"), (2, "https://b.example/")]
    assert text('<p><a href="https://c.example/">more</a></p>', refs) == "more [3]"
    assert refs.since(2) == [(3, "https://c.example/")]


def test_links_whose_text_is_their_address_are_not_numbered():
    refs = LinkRefs()
    out = text('<p><a href="https://a.example/">https://a.example/</a> '
               '<a href="mailto:me@a.example">me@a.example</a> <a href="https://a.example/y"></a></p>', refs)
    assert out == "https://a.example/ me@a.example https://a.example/y"
    assert refs.numbers == {}


def test_headings_lists_quotes_code_and_images():
    html = ("<h2>Plans</h2><ul><li>one</li><li>two<ul><li>two and a half</li></ul></li></ul>"
            "<ol start=\"3\"><li>third</li><li>fourth</li></ol>"
            "<blockquote><p>Said <em>once</em>.</p></blockquote>"
            "<pre><code>x = 1\n  y = 2</code></pre>"
            "<p><img src=\"https://a.example/i.png\" alt=\"A  cat\"> and <img src=\"https://a.example/j.png\"></p>"
            "<p>Line<br>break and <strong>bold</strong> <code>code</code></p>")
    assert text(html) == ("## Plans\n\n"
                          "- one\n- two\n  - two and a half\n\n"
                          "3. third\n4. fourth\n\n"
                          "> Said *once*.\n\n"
                          "    x = 1\n      y = 2\n\n"
                          "[image: A cat] and\n\n"
                          "Line\nbreak and **bold** `code`")


def test_tables_are_rows_of_cells():
    html = "<table><thead><tr><th>Day</th>\n<th>Job</th></tr></thead><tbody><tr><td>Mon</td><td>Cut</td></tr>" \
           "</tbody></table><p>After</p>"
    assert text(html) == "Day | Job\nMon | Cut\n\nAfter"


def test_scripts_and_styles_say_nothing_and_entities_are_decoded():
    assert text("<style>p{}</style><p>Fish &amp; chips &lt;3</p><script>x()</script>") == "Fish & chips <3"


def test_list_items_wrap_under_their_marker():
    out = text("<ul><li>" + "long " * 30 + "</li></ul>")
    lines = out.splitlines()
    assert lines[0].startswith("- long") and all(line.startswith("  long") for line in lines[1:])


_TAGS = st.sampled_from(["p", "div", "ul", "ol", "li", "blockquote", "pre", "code", "em", "strong", "h2", "h4", "table",
                         "thead", "tr", "th", "td", "span", "dl", "dt", "dd", "figure", "figcaption", "sup", "section"])
_FRAGMENT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>&"), max_size=20),
    _TAGS.map(lambda tag: f"<{tag}>"), _TAGS.map(lambda tag: f"</{tag}>"),
    st.just('<a href="https://x.example/p">'), st.just("</a>"), st.just("<br>"), st.just('<img alt="pic">'),
    st.just("<hr>"), st.just("<hr/>"), st.just("<wbr>"), st.just('<input type="checkbox">'), st.just("<!-- c -->"),
)


@given(st.lists(_FRAGMENT, max_size=40))
def test_any_html_gives_text_without_markup_and_consistent_numbers(fragments):
    refs = LinkRefs()
    html = "".join(fragments)
    out = html_to_text(html, refs)
    assert "<" not in out and ">" not in out.replace("> ", "") and "\x00" not in out
    assert not out.startswith("\n") and not out.endswith("\n")
    for number in map(int, re.findall(r"\[(\d+)\]", out)):
        if "[" not in html:
            assert number in refs.numbers.values()
    assert sorted(refs.numbers.values()) == list(range(1, len(refs.numbers) + 1))


def test_a_horizontal_rule_becomes_a_separator_line():
    assert text("<p>One</p><hr><p>Two</p>").split("\n\n") == ["One", "* * *", "Two"]
