"""ERB tags: finding them, parsing helper calls (never evaluating), placeholders."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.erb import Call, ErbSyntaxError, Tag, iter_tags, parse_call, protect, restore


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("by('chris-roos')", Call("by", ("chris-roos",))),
        ('by("chris-roos")', Call("by", ("chris-roos",))),
        ("project 'voicenet'", Call("project", ("voicenet",))),
        ("image_path('blog/x.jpg')", Call("image_path", ("blog/x.jpg",))),
        (
            "image_tag('blog/x.jpg', alt: 'A', width: '100%')",
            Call("image_tag", ("blog/x.jpg",), {"alt": "A", "width": "100%"}),
        ),
        ("image_tag(\"x.png\", alt: \"It's\")", Call("image_tag", ("x.png",), {"alt": "It's"})),
        (
            "image_tag 'x.png', :alt => 'Old', :size => 40, 'title' => :sym",
            Call("image_tag", ("x.png",), {"alt": "Old", "size": 40, "title": "sym"}),
        ),
        ("image_tag('x', {alt: 'braced', 'class': \"c\"})", Call("image_tag", ("x",), {"alt": "braced", "class": "c"})),
        ("image_tag('x', \"data-a\": 1_000, ratio: -1.5,)", Call("image_tag", ("x",), {"data-a": 1000, "ratio": -1.5})),
        ("f(true, false, nil, :\"quoted sym\")", Call("f", (True, False, None, "quoted sym"))),
        ("link_to 'S3', 'http://aws.amazon.com/s3/'", Call("link_to", ("S3", "http://aws.amazon.com/s3/"))),
        ("end", Call("end")),
        ("by(\n  'multi-line'\n)", Call("by", ("multi-line",))),
    ],
)
def test_parse_call(code: str, expected: Call) -> None:
    assert parse_call(code) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r"'it\'s'", "it's"),
        (r"'back\\slash'", "back\\slash"),
        (r"'keeps \n literally'", "keeps \\n literally"),
        (r'"tab\there"', "tab\there"),
        (r'"quote \" inside"', 'quote " inside'),
        (r'"\u00e9\u{1F600 41}\x41"', "\u00e9\U0001F600AA"),
        (r'"escaped \#{not interpolated}"', "escaped #{not interpolated}"),
        (r'"unknown \q escape"', "unknown q escape"),
        ("'%> inside'", "%> inside"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert parse_call(f"f({literal})").args == (value,)


@pytest.mark.parametrize(
    "code",
    [
        "ENV['HOST_NAME']",
        "content_tag(:li, link_to_snip(snip), value: index)",
        'by("#{name}")',
        "by(author)",
        "by('x'",
        "by('x') + 1",
        "'just a string'",
        "nil",
        "",
        "f(a: 1, 'positional after keyword')",
        "system('rm -rf /')x",
        "`ls`",
        "f(1 2)",
    ],
)
def test_anything_but_one_literal_call_is_refused(code: str) -> None:
    with pytest.raises(ErbSyntaxError):
        parse_call(code)


@given(st.text(max_size=80))
def test_parse_call_only_ever_raises_erb_syntax_error(code: str) -> None:
    try:
        call = parse_call(code)
    except ErbSyntaxError:
        return
    assert call.name.isidentifier() or call.name[:-1].isidentifier()


def _ruby_single(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ruby_double(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#").replace("\n", "\\n")
    return '"' + escaped + '"'


@given(st.text(max_size=40), st.text(max_size=40))
def test_quoted_strings_round_trip(first: str, second: str) -> None:
    call = parse_call(f"image_tag({_ruby_single(first)}, alt: {_ruby_double(second)})")
    assert call == Call("image_tag", (first,), {"alt": second})


def test_iter_tags_kinds_and_literals() -> None:
    text = "a <%= by('x') -%> b <% end %> c <%# note %> d <%- x -%> <%% e %> f <% open"
    found = [(text[start:end], tag) for start, end, tag in iter_tags(text)]
    assert found == [
        ("<%= by('x') -%>", Tag("<%= by('x') -%>", "=", "by('x')")),
        ("<% end %>", Tag("<% end %>", "", "end")),
        ("<%# note %>", Tag("<%# note %>", "#", "note")),
        ("<%- x -%>", Tag("<%- x -%>", "", "x")),
        ("<%%", None),
    ]


def test_only_output_tags_are_calls() -> None:
    with pytest.raises(ErbSyntaxError, match="not an output tag"):
        Tag("<% by('x') %>", "", "by('x')").call()
    assert Tag("<%= ENV['X'] %>", "=", "ENV['X']").describe() == "<%= ENV['X'] %>"
    assert Tag("<%= link_to 'a', 'b' %>", "=", "link_to 'a', 'b'").describe() == "link_to"


# ---------------------------------------------------------------- placeholders


def _keep_all(tag: Tag) -> str:
    return f"<b>{html.escape(tag.code)}</b>"


def test_protect_uses_inert_alphanumeric_tokens() -> None:
    protected = protect("x <%= by('a') %> y <%= by('b') %>", _keep_all)
    assert protected.text == f"x {protected.token(0)} y {protected.token(1)}"
    assert protected.token(1).isalnum()
    assert protected.outputs == ("<b>by(&#x27;a&#x27;)</b>", "<b>by(&#x27;b&#x27;)</b>")


def test_the_token_prefix_never_occurs_in_the_text() -> None:
    text = "zqerb zqerbq zqerb0Z <%= x %>"
    protected = protect(text, _keep_all)
    assert protected.prefix not in text
    assert protected.text.startswith(text[: text.index("<%")])


def test_dropped_tags_take_their_blank_line_with_them() -> None:
    text = "<ul>\n  <% items.each do |i| %>\n  <li>x</li>\n  <% end -%>\n</ul>\nkeep <% inline %> this\n<% end %>"
    protected = protect(text, lambda tag: None)
    assert protected.text == "<ul>\n  <li>x</li>\n</ul>\nkeep  this\n"
    assert protected.outputs == ()


def test_erb_escape_becomes_a_literal_tag_opener() -> None:
    assert protect("<%%= not a tag %>", _keep_all).text == "<%= not a tag %>"


def test_restore_escapes_for_where_each_token_sits() -> None:
    protected = protect("<%= a %>|<%= b %>|<%= c %>|<%= d %>|<%= e %>", lambda tag: '<i class="x">&amp;</i>')
    t = [protected.token(i) for i in range(5)]
    converted = (
        f'<p>{t[0]}</p><img src="{t[1]}" alt=\'{t[1]}\'><pre><code>{t[2]}</code></pre>'
        f"<!-- {t[3]} --><a {t[4]}=\"v\" href=x>after</a><code/>{t[0]}"
    )
    assert restore(converted, protected) == (
        '<p><i class="x">&amp;</i></p>'
        '<img src="&lt;i class=&quot;x&quot;&gt;&amp;&lt;/i&gt;" alt="&lt;i class=&quot;x&quot;&gt;&amp;&lt;/i&gt;">'
        '<pre><code>&lt;i class="x"&gt;&amp;&lt;/i&gt;</code></pre>'
        '<!-- &lt;i class="x"&gt;&amp;&lt;/i&gt; -->'
        '<a href="x">after</a><code/><i class="x">&amp;</i>'
    )


def test_restore_puts_urls_into_attributes_as_plain_values() -> None:
    protected = protect("<%= image_path('a') %>", lambda tag: "https://x.example/a?b=1&amp;c=2")
    converted = f'<p><img src="{protected.token(0)}"> {protected.token(0)}</p>'
    assert restore(converted, protected) == (
        '<p><img src="https://x.example/a?b=1&amp;c=2"> https://x.example/a?b=1&amp;c=2</p>'
    )


@given(st.lists(st.one_of(st.text(alphabet="ab <>%=&'\"\n", max_size=8), st.sampled_from(["<%= t %>", "<% s %>"]))))
def test_no_token_survives_a_restore(parts: list[str]) -> None:
    text = "".join(parts)
    protected = protect(text, lambda tag: '<i title="q">[OUT]</i>' if tag.marker == "=" else None)
    restored = restore(protected.text, protected)
    assert protected.prefix not in restored.lower()
    assert restored.count("[OUT]") <= len(protected.outputs)


@given(st.lists(st.one_of(st.text(alphabet="ab %=>\n", max_size=8), st.just("<%= t %>"))))
def test_tokens_in_text_become_exactly_the_outputs(parts: list[str]) -> None:
    text = "".join(parts)
    protected = protect(text, lambda tag: "<b>[OUT]</b>")
    assert restore(protected.text, protected) == text.replace("<%= t %>", "<b>[OUT]</b>")


def test_a_token_in_a_tag_name_becomes_text() -> None:
    protected = protect("<<%= by('x') %>>", lambda tag: '<span class="b">X</span>')
    assert restore(protected.text, protected) == '&lt;&lt;span class="b"&gt;X&lt;/span&gt;>'
