"""The rendered-once letter: placeholders filled per recipient, once, escaped for HTML."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from publisher.mail.letter import Placeholders, fill, placeholder, split

FIELDS = st.sampled_from(["name", "email", "unsubscribe_url"])


def test_values_are_escaped_for_html_and_kept_for_text():
    template = f"Hi {placeholder('name')}!"
    assert fill(template, {"name": "<b>Ann</b> & co"}, escape=True) == "Hi &lt;b&gt;Ann&lt;/b&gt; &amp; co!"
    assert fill(template, {"name": "<b>Ann</b> & co"}, escape=False) == "Hi <b>Ann</b> & co!"


def test_a_value_holding_a_placeholder_is_not_filled_in_turn():
    template = f"{placeholder('name')} / {placeholder('email')}"
    filled = fill(template, {"name": placeholder("email"), "email": "a@example.org"}, escape=False)
    assert filled == f"{placeholder('email')} / a@example.org"


def test_templates_see_placeholders_and_unknown_fields_fail_loudly():
    recipient = Placeholders()
    assert recipient.unsubscribe_url == placeholder("unsubscribe_url")
    try:
        recipient.password  # noqa: B018 - the attribute access is the test
    except AttributeError as exc:
        assert "use one of name, email, unsubscribe_url" in str(exc)
    else:
        raise AssertionError("an unknown recipient field must not render")


@given(st.lists(st.one_of(st.text(max_size=20), FIELDS.map(lambda f: (f,))), max_size=12),
       st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_split_then_join_equals_fill(parts, name, email, url):
    template = "".join(placeholder(p[0]) if isinstance(p, tuple) else p for p in parts)
    values = {"name": name, "email": email, "unsubscribe_url": url}
    joined = "".join(values[p[0]] if isinstance(p, tuple) else p for p in split(template))
    if "@@PUBLISHER:" not in "".join(p for p in parts if isinstance(p, str)):
        assert joined == fill(template, values, escape=False)
