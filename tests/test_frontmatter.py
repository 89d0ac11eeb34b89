"""publisher.frontmatter: YAML front matter and the shared YAML loader."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.frontmatter import json_safe, load_mapping, read_front_matter, split_front_matter


def test_front_matter_then_body() -> None:
    found = split_front_matter("---\ntitle: Hello\ntags: [a, b]\n---\nThe body.\n")
    assert found == ("The body.", {"title": "Hello", "tags": ["a", "b"]})


def test_closed_by_three_dots_and_trailing_spaces() -> None:
    assert split_front_matter("---  \ntitle: x\n...  \nBody") == ("Body", {"title": "x"})
    assert split_front_matter("---\ntitle: x\n---\n\n\nBody\n\n  more\n\n") == ("Body\n\n  more", {"title": "x"})


def test_empty_front_matter() -> None:
    assert split_front_matter("---\n---\nBody") == ("Body", {})
    assert split_front_matter("---\n# only a comment\n---\n") == ("", {})


@pytest.mark.parametrize(
    "text", ["No front matter", "----\ntitle: x\n----\n", "--- title: x\n---\n", " ---\ntitle: x\n---\n", ""]
)
def test_text_without_front_matter(text: str) -> None:
    assert split_front_matter(text) is None


@pytest.mark.parametrize("text", ["---", "---\n", "---\ntitle: x\n", "---\ntitle: x\n----\nbody\n"])
def test_unclosed_front_matter(text: str) -> None:
    with pytest.raises(ValueError, match=r"^front matter is not closed: add a '---' line after the attributes$"):
        split_front_matter(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\n- a\n---\n", "front matter must be 'key: value' lines (a mapping), not a list"),
        ("---\njust text\n---\n", "front matter must be 'key: value' lines (a mapping), not a single text value"),
        ("---\ntitle: ok\ndate: [2020\n---\n", "front matter: line 4: did not find expected ',' or ']'"),
        ("---\ntitle: a: b\n---\n", "front matter: line 2: mapping values are not allowed in this context"),
        ("---\na: 1\na: 2\n---\n", None),  # duplicate keys: the last wins, as in PyYAML
    ],
)
def test_bad_front_matter_says_where(text: str, message: str | None) -> None:
    if message is None:
        assert split_front_matter(text) == ("", {"a": 2})
        return
    with pytest.raises(ValueError) as caught:
        split_front_matter(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_dates_stay_text_and_plain_values_are_remembered_as_written() -> None:
    found = read_front_matter("---\ndate: 2024-01-02\ntitle: 2012\nok: yes\nq: '7'\nl: [1, on, 'x']\n---\n")
    assert found is not None
    body, attributes, raw = found
    assert attributes == {"date": "2024-01-02", "title": 2012, "ok": True, "q": "7", "l": [1, True, "x"]}
    assert raw == {"date": "2024-01-02", "title": "2012", "ok": "yes", "l": ["1", "on", None]}


def test_keys_become_text() -> None:
    attributes, _ = load_mapping("2: a\ntrue: b\n~: c\n", first_line=1, what="x")
    assert attributes == {"2": "a", "True": "b", "None": "c"}


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (b"hi", "aGk="),
        ({3, 1}, [1, 3]),
        ((1, 2), [1, 2]),
        (float("nan"), "nan"),
        ({1: {2: [date(2024, 1, 2)]}}, {"1": {"2": ["2024-01-02"]}}),
        (1.5, 1.5),
    ],
)
def test_json_safe(value: object, safe: object) -> None:
    assert json_safe(value) == safe
    json.dumps(json_safe(value), allow_nan=False)


@given(st.text(max_size=80))
def test_any_front_matter_gives_a_mapping_or_a_value_error(yaml_text: str) -> None:
    try:
        found = split_front_matter(f"---\n{yaml_text}\n---\nBody\n")
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert found is not None
        json.dumps(found[1], allow_nan=False)


def test_an_explicit_tag_on_a_wrong_value_is_a_post_error_not_a_crash():
    from datetime import timezone

    from publisher.errors import PostError
    from publisher.posts import read_post

    for body in (b"Body\n\n:x: !!timestamp nope\n", b"---\ndate: !!timestamp nope\n---\nBody\n"):
        name = "a.snip.markdown" if body.startswith(b"Body") else "a.md"
        try:
            read_post(name, body, 1.0, tz=timezone.utc, source=name)
        except PostError as error:
            assert "!!timestamp" in str(error) and str(error).count("\n") == 0
        else:
            raise AssertionError("a broken tagged value must be reported")
