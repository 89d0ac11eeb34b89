"""Renderer: golden files, shortcode templates, ERB handling, and the real corpus."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from publisher.errors import RenderError
from publisher.posts import Post
from publisher.render import Rendered, Renderer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "render"
REGEN = os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1"
SUMMARY_MARK = "\n<!-- summary -->\n"
WHEN = datetime(2024, 5, 17, 9, 30, tzinfo=timezone.utc)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
CASES = sorted(p for p in FIXTURES.glob("*.snip.*") if not p.name.endswith(".expected.html"))


def split_snip(text: str) -> tuple[str, dict[str, str]]:
    """A snip's body, and its trailing ``:key: value`` lines."""
    lines = text.split("\n")
    attributes: dict[str, str] = {}
    while lines and (not lines[-1].strip() or re.match(r":[a-z_]+:", lines[-1])):
        line = lines.pop()
        if line.strip():
            key, _, value = line[1:].partition(":")
            attributes[key] = value.strip()
    return "\n".join(lines) + "\n", attributes


def make_post(path: str, body: str, *, body_format: str = "markdown", erb: bool = False) -> Post:
    name = Path(path).name.split(".")[0]
    return Post(
        path=path, name=name, body_format=body_format, body=body, title=name,
        created_at=WHEN, updated_at=WHEN, erb=erb,
    )


def make_renderer(**overrides: object) -> Renderer:
    settings: dict[str, object] = {
        "site_url": "https://example.org/",
        "asset_base_url": "https://assets.example.org/images",
        "author_url": "/people/{author}",
        "authors": {"james-mead": "James Mead (JM)"},
    }
    settings.update(overrides)
    return Renderer(**settings)  # type: ignore[arg-type]


def render_case(source: Path) -> Rendered:
    body, attributes = split_snip(source.read_text(encoding="utf-8"))
    renderer = make_renderer(
        summary=attributes.get("summary", "paragraph"),
        summary_length=int(attributes.get("summary_length", "300")),
    )
    body_format = "html" if source.name.endswith(".html") else "markdown"
    post = make_post(f"render/{source.name}", body, body_format=body_format, erb=attributes.get("erb") == "true")
    return renderer.render(post, attributes["url"])


class _Links(HTMLParser):
    """Every href/src value and all the text of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("href", "src") and value is not None]


def urls_in(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.urls


# ---------------------------------------------------------------- golden files


@pytest.mark.parametrize("source", CASES, ids=lambda p: p.name.split(".")[0])
def test_golden(source: Path) -> None:
    rendered = render_case(source)
    actual = rendered.html + SUMMARY_MARK + rendered.summary + "\n"
    expected_file = source.with_name(source.name.split(".")[0] + ".expected.html")
    if REGEN:
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no golden file: run PUBLISHER_REGEN_GOLDEN=1 pytest {__file__}"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_golden_cases_cover_every_kind() -> None:
    names = {p.name.split(".")[0] for p in CASES}
    assert {"markdown-features", "erb-helpers", "erb-unknown", "relative-links", "html-body"} <= names


@pytest.mark.parametrize("source", CASES, ids=lambda p: p.name.split(".")[0])
def test_golden_outputs_are_absolute_and_erb_free(source: Path) -> None:
    rendered = render_case(source)
    for html in (rendered.html, rendered.summary):
        assert "<%" not in html
        assert all(SCHEME.match(url) for url in urls_in(html)), urls_in(html)


# ---------------------------------------------------------------- behaviour


def test_template_syntax_in_a_body_comes_out_literally() -> None:
    body = "{{ 7 * 7 }} {% for x in y %}loop{% endfor %} {{ config }}\n"
    for erb in (False, True):
        html = make_renderer().render(make_post("a.snip.markdown", body, erb=erb), "https://example.org/a").html
        assert "{{ 7 * 7 }}" in html and "{% for x in y %}" in html and "49" not in html


def test_erb_is_left_as_text_when_the_post_is_not_erb() -> None:
    body = "Hi <%= by('chris-roos') %>\n\n<div>\n<%= image_tag('x.png') %>\n</div>\n"
    html = make_renderer().render(make_post("a.snip.markdown", body), "https://example.org/a").html
    assert "<%" not in html
    assert html.count("&lt;%= by('chris-roos') %&gt;") == 1
    assert "&lt;%= image_tag('x.png') %" in html
    assert "byline" not in html and "<img" not in html


def test_unknown_helpers_are_removed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    body = "A <%= link_to 'x', 'https://x.example/' %> b <%= ENV['SECRET'] %> c\n\n<% end %>\n"
    post = make_post("weeknotes/week-1.snip.markdown", body, erb=True)
    with caplog.at_level(logging.WARNING, logger="publisher.render"):
        html = make_renderer().render(post, "https://example.org/week-1").html
    assert html == "<p>A  b  c</p>"
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "weeknotes/week-1.snip.markdown: unknown ERB helper 'link_to' removed",
        "weeknotes/week-1.snip.markdown: unknown ERB helper \"<%= ENV['SECRET'] %>\" removed",
        "weeknotes/week-1.snip.markdown: unknown ERB helper '<% end %>' removed",
    ]


def test_known_helper_with_bad_arguments_is_removed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    post = make_post("b.snip.markdown", "x <%= image_tag('a.png', onload: 'evil()') %> y\n", erb=True)
    with caplog.at_level(logging.WARNING, logger="publisher.render"):
        html = make_renderer().render(post, "https://example.org/b").html
    assert html == "<p>x  y</p>"
    assert "b.snip.markdown: ERB helper 'image_tag' removed" in caplog.text
    assert "onload" in caplog.text


def test_author_names_and_urls() -> None:
    renderer = make_renderer(site_url="https://example.org/blog/", author_url="authors/{author}.html")
    body = "<%= by('chris-roos') %> <%= by('james-mead') %> <%= by('o_brien smith') %>\n"
    html = renderer.render(make_post("c.snip.markdown", body, erb=True), "https://example.org/blog/c").html
    assert '<a href="https://example.org/blog/authors/chris-roos.html">Chris Roos</a>' in html
    assert '<a href="https://example.org/blog/authors/james-mead.html">James Mead (JM)</a>' in html
    assert '<a href="https://example.org/blog/authors/o_brien%20smith.html">O Brien Smith</a>' in html


def test_relative_asset_base_is_resolved_against_the_site() -> None:
    renderer = make_renderer(site_url="https://gofreerange.com/", asset_base_url="/images/")
    post = make_post("d.snip.markdown", "<%= image_tag('blog/x.jpg', alt: 'A') %>\n", erb=True)
    html = renderer.render(post, "https://gofreerange.com/d").html
    assert html == '<p><img src="https://gofreerange.com/images/blog/x.jpg" alt="A"></p>'


def test_output_is_deterministic_across_posts_and_renderers() -> None:
    first = make_post("e.snip.markdown", "One[^a] two[^b].\n\n[^a]: A.\n[^b]: B.\n")
    other = make_post("f.snip.markdown", "Other[^z].\n\n[^z]: Z.\n\n*[HTML]: Markup\n\nHTML\n")
    renderer = make_renderer()
    before = renderer.render(first, "https://example.org/e")
    renderer.render(other, "https://example.org/f")
    after = renderer.render(first, "https://example.org/e")
    fresh = make_renderer().render(first, "https://example.org/e")
    assert before == after == fresh
    assert 'href="https://example.org/e#fn:a"' in before.html


def test_other_posts_state_does_not_leak() -> None:
    renderer = make_renderer()
    renderer.render(make_post("g.snip.markdown", "[ref]: /defined\n\n*[ABC]: x\n"), "https://example.org/g")
    html = renderer.render(make_post("h.snip.markdown", "[a][ref] ABC\n"), "https://example.org/h").html
    assert html == "<p>[a][ref] ABC</p>"


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="not absolute"):
        make_renderer(site_url="/relative/")
    with pytest.raises(ValueError, match="summary"):
        make_renderer(summary="words")


# ---------------------------------------------------------------- template overrides


def test_an_operator_template_overrides_the_shortcodes(tmp_path: Path) -> None:
    (tmp_path / "shortcodes.html.j2").write_text(
        '{% macro by(name, url, slug) %}<cite data-slug="{{ slug }}">{{ name }}</cite>{% endmacro %}\n'
        '{% macro image_tag(src, alt, attributes) %}<figure><img src="{{ src }}" alt="{{ alt }}">'
        "<figcaption>{{ alt }}</figcaption></figure>{% endmacro %}\n"
        "{% macro image_path(src) %}{{ src }}?v=2{% endmacro %}\n"
        '{% macro link_to(text, url) %}<a href="{{ url }}">{{ text }}</a>{% endmacro %}\n',
        encoding="utf-8",
    )
    body = (
        "By <%= by('chris-roos') %>\n\n<%= image_tag('p.png', alt: 'Pic & <more>') %>\n\n"
        "<img src=\"<%= image_path('q.png') %>\"> <%= link_to 'Docs', 'docs/' %>\n"
    )
    post = make_post("i.snip.markdown", body, erb=True)
    default = make_renderer().render(post, "https://example.org/i").html
    custom = make_renderer(template_dirs=[tmp_path]).render(post, "https://example.org/i").html
    assert default != custom
    assert '<cite data-slug="chris-roos">Chris Roos</cite>' in custom
    assert "<figcaption>Pic &amp; &lt;more&gt;</figcaption>" in custom
    assert 'src="https://assets.example.org/images/q.png?v=2"' in custom
    assert '<a href="https://example.org/docs/">Docs</a>' in custom
    assert "Docs" not in default


def test_a_template_dir_without_the_file_falls_back_to_the_built_in_one(tmp_path: Path) -> None:
    post = make_post("j.snip.markdown", "<%= by('tom-ward') %>\n", erb=True)
    html = make_renderer(template_dirs=[tmp_path]).render(post, "https://example.org/j").html
    assert html == make_renderer().render(post, "https://example.org/j").html
    assert 'class="byline"' in html


def test_a_broken_template_is_a_render_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "shortcodes.html.j2").write_text("{% macro by(name) %}\n{{ name }\n", encoding="utf-8")
    renderer = make_renderer(template_dirs=[tmp_path])  # the template is read at the first ERB tag
    post = make_post("b.snip.markdown", "<%= by('tom-ward') %>\n", erb=True)
    with pytest.raises(RenderError) as caught:
        renderer.render(post, "https://example.org/b")
    assert "shortcodes.html.j2" in str(caught.value) and "\n" not in str(caught.value)


def test_a_failing_macro_is_a_render_error_naming_the_post(tmp_path: Path) -> None:
    (tmp_path / "shortcodes.html.j2").write_text(
        "{% macro by(name, url, slug) %}{{ name.missing.deeper }}{% endmacro %}\n", encoding="utf-8"
    )
    post = make_post("k.snip.markdown", "<%= by('tom-ward') %>\n", erb=True)
    with pytest.raises(RenderError, match=r"^k\.snip\.markdown: shortcode 'by'"):
        make_renderer(template_dirs=[tmp_path]).render(post, "https://example.org/k")


def test_heavy_modules_are_imported_lazily() -> None:
    code = (
        "import sys, publisher.render, publisher.erb, publisher.urls, publisher.summary;"
        "print(sorted(m for m in ('markdown', 'jinja2', 'lxml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_jinja_is_imported_only_for_an_erb_post() -> None:
    code = (
        "import sys\n"
        "from publisher.posts import read_post\n"
        "from publisher.render import Renderer\n"
        "r = Renderer(site_url='https://example.org/', asset_base_url='/images/')\n"
        "plain = read_post('a.snip.markdown', b'# A\\n\\nText.\\n', 0.0)\n"
        "r.render(plain, 'https://example.org/a')\n"
        "print('jinja2' in sys.modules)\n"
        "erb = read_post('b.snip.markdown', b\"<%= by('ann') %>\\n\\n:erb: true\\n\", 0.0)\n"
        "r.render(erb, 'https://example.org/b')\n"
        "print('jinja2' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


# ---------------------------------------------------------------- the real corpus


def _corpus_posts(root: Path) -> list[tuple[Path, str]]:
    posts = []
    for folder in ("weeknotes", "blog", "weeklinks", "show-and-tell"):
        for path in sorted((root / "soups" / folder).glob("*.snip.*")):
            body, attributes = split_snip(path.read_text(encoding="utf-8"))
            if attributes.get("erb") == "true":
                posts.append((path, body))
    return posts


@pytest.mark.corpus
def test_corpus_erb_posts_render_without_erb_or_relative_urls(
    corpus_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    posts = _corpus_posts(corpus_root)
    assert len(posts) > 100
    renderer = Renderer(site_url="https://gofreerange.com/", asset_base_url="/images/")
    with caplog.at_level(logging.WARNING, logger="publisher.render"):
        for path, body in posts:
            body_format = "html" if path.name.endswith(".html") else "markdown"
            post = make_post(str(path.relative_to(corpus_root)), body, body_format=body_format, erb=True)
            rendered = renderer.render(post, f"https://gofreerange.com/{post.name}")
            for html in (rendered.html, rendered.summary):
                assert "<%" not in html, path
                relative = [url for url in urls_in(html) if not SCHEME.match(url)]
                assert relative == [], path
            assert rendered.summary, path
    helpers_lost = [r.getMessage() for r in caplog.records if re.search(r"'(by|image_tag|image_path)'", r.getMessage())]
    assert helpers_lost == []
