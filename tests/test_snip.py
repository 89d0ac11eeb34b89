"""publisher.snip: finding the trailing attribute block and reading it (fast path and PyYAML)."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st

from publisher import snip
from publisher.frontmatter import _loader_class
from publisher.snip import NOT_SIMPLE, find_block, parse_scalar, split_snip


def yaml_load(text: str) -> object:
    """What PyYAML's safe loader (minus timestamps, as publisher uses it) makes of ``text``."""
    return yaml.load(text, Loader=_loader_class())


# --- finding the block ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "body", "keys"),
    [
        ("Body.\n\n:a: 1\n:b: 2\n", "Body.", ["a", "b"]),
        ("Body.\n\n:a: 1\n:b: 2", "Body.", ["a", "b"]),  # no final newline
        ("Body.\n\n:a: 1\n:b: 2\n\n\n", "Body.", ["a", "b"]),  # trailing blank lines
        ("Body.\n\n:a: 1\n\n:b: 2\n", "Body.", ["a", "b"]),  # two groups
        ("Body.\n\n:a: 1\n   \n:b: 2\n", "Body.", ["a", "b"]),  # groups split by a line of spaces
        ("Body.\n\n:a:\n  - x\n  - y\n:b: 2\n", "Body.", ["a", "b"]),  # list continuation
        ("Body.\n\n:a:\n- x\n- y\n", "Body.", ["a"]),  # unindented list items
        ("Body.\n:a: 1\n", "Body.\n:a: 1", []),  # glued to the body: body
        ("Body.\n:a: 1\n\n:b: 2\n", "Body.\n:a: 1", ["b"]),  # first group glued to the body
        (":smile: here\nand more\n\n:b: 2\n", ":smile: here\nand more", ["b"]),
        ("Body.\n\n    code\n\n:b: 2\n", "Body.\n\n    code", ["b"]),  # indented code is not a group
        ("Body.\n\n- item\n- item\n\n:b: 2\n", "Body.\n\n- item\n- item", ["b"]),
        ("Body :-)\n\n:-) smile\n", "Body :-)\n\n:-) smile", []),  # ":-)" is no key
        ("Body.\n\n:a:b\n", "Body.\n\n:a:b", []),  # no space after the key: not an attribute
        (":a: 1\n:b: 2\n", "", ["a", "b"]),  # the whole file is attributes
        ("Only a body.\n", "Only a body.", []),
        ("\n\nBody with blank lines around.\n\n", "Body with blank lines around.", []),
        ("Body.\n\n:a: 1\n\u3000\n:b: 2\n", "Body.\n\n:a: 1\n\u3000\n:b: 2", []),  # U+3000 is not blank
    ],
)
def test_find_the_trailing_block(text: str, body: str, keys: list[str]) -> None:
    found_body, attributes = split_snip(text)
    assert found_body == body
    assert list(attributes) == keys
    assert find_block(text) == snip._scan_block(text)


_LINES = st.sampled_from(
    [
        "", "  ", "\t", " \t ", ":a: b", ":key:", ":k-1: 'q'", "  - x", "- y", "-", "- ", "body text", ":smile: hi",
        ":-)", "   indented", "text: with colon", ":a:b", ":a:\tb", "\u3000", " \u3000", "#", ":", "::", ": x",
    ]
)


@given(st.lists(_LINES, max_size=12), st.sampled_from(["", "\n", "\n\n"]))
def test_the_fast_block_finder_agrees_with_the_line_scanner(lines: list[str], ending: str) -> None:
    text = "\n".join(lines) + ending
    assert find_block(text) == snip._scan_block(text)


# --- the fast scalar parser agrees with PyYAML ------------------------------------------

_TRICKY = st.sampled_from(
    list("-?:,[]{}#&*!|>'\"%@`=<~. \t+0123456789eExXbB_oO")
    + ["true", "False", "yes", "NO", "on", "Off", "null", "Null", "~", ".inf", "-.Inf", ".nan", "0x1f", "0o7", "0b101",
       "1_000", "1:30", "190:20:30", "1e3", "1.5e+3", "\u2028", "\x85", "\ufeff", "\x07", "é", ": ", " #", "''", "\\"]
)
_VALUES = st.one_of(
    st.lists(_TRICKY, max_size=6).map("".join),
    st.text(max_size=12),
    st.from_regex(r"[0-9+\-.]{1,8}", fullmatch=True),
)


@given(_VALUES)
@example("2018-03-16 12:23:42.686103000 +00:00")
@example("O2 #blue")
@example('"O2 #blue"')
@example("it's")
@example("'it''s'")
@example("0777")
@example("-0")
@example("123456789012345678")
@example("12345678901234567890")
def test_the_fast_scalar_parser_agrees_with_pyyaml(value: str) -> None:
    text = value.strip(" ")
    fast = parse_scalar(text)
    assume(fast is not NOT_SIMPLE)
    loaded = yaml_load(f":k: {text}\n")
    assert loaded == {":k": fast}
    assert type(loaded[":k"]) is type(fast)  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Week 473", "Week 473"), ("chris-roos", "chris-roos"), ("true", True), ("false", False), ("yes", True),
        ("", None), ("~", None), ("null", None), ("42", 42), ("-7", -7), ('"O2 #blue"', "O2 #blue"),
        ("'it''s'", "it's"), ("2018-03-16 12:23:42 +00:00", "2018-03-16 12:23:42 +00:00"),
        ("2024-01-02", "2024-01-02"), ("Some \"Exciting\" news", 'Some "Exciting" news'),
    ],
)
def test_the_fast_parser_reads_the_common_values(text: str, value: object) -> None:
    parsed = parse_scalar(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    "text", ["a: b", "a #b", "[a, b]", "{a: 1}", "|", ">", "&anchor x", "*alias", "!tag x", "1.5", "0x10", "010",
             "1_000", "'unclosed", '"esc\\n"', "- item", "a\tb", "@reserved", "=", "<<", "ends:"],
)
def test_the_fast_parser_leaves_the_rest_to_pyyaml(text: str) -> None:
    assert parse_scalar(text) is NOT_SIMPLE


# --- whole blocks -------------------------------------------------------------------------

_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=6))
def test_the_fast_path_reads_blocks_as_pyyaml_does(values: dict[str, str]) -> None:
    block = "".join(f":{key}: {value}\n" for key, value in values.items())
    assume("\n" not in "".join(values.values()) and "\r" not in "".join(values.values()))
    fast = snip._parse_simple(block)
    assume(fast is not None)
    try:
        slow = snip._parse_yaml(block, 1)
    except ValueError:
        raise AssertionError(f"the fast path read a block PyYAML rejects: {block!r}") from None
    assert fast[0] == slow[0]
    assert {k: type(v) for k, v in fast[0].items()} == {k: type(v) for k, v in slow[0].items()}


_YAMLISH = st.one_of(
    _VALUES,
    st.sampled_from(["[a, b]", "{x: 1}", "|\n  two\n  lines", ">\n  folded", "&a [1, *a]", "&b x", "*b", "!!binary aGk=",
                     "!!set {a, b}", "!!timestamp 2013-02-30", "!!int 12x", "!!float x", "!!python/name:os.system",
                     "\n  - one\n  - two", "\n  nested: map", "'quoted: text'", "\"tab\\there\"", "2013-02-30 10:00",
                     "[[[[[[[[[[]]]]]]]]]]", "&x [*x, *x]", "? [a]\n: b", "!!omap [a: 1]", "!!pairs [a: 1]"]),
)


@given(st.lists(st.tuples(_KEYS, _YAMLISH), min_size=1, max_size=6), st.text(max_size=30))
def test_any_attribute_block_gives_a_mapping_or_a_value_error(pairs: list[tuple[str, str]], body: str) -> None:
    text = body + "\n\n" + "".join(f":{key}: {value}\n" for key, value in pairs)
    try:
        found_body, attributes = split_snip(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(found_body, str)
        json.dumps(attributes, allow_nan=False)
        assert all(isinstance(key, str) and not key.startswith(":") for key in attributes)


_BODY_LINES = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20).filter(
        lambda line: not line.startswith((":", " ", "\t", "-"))
    ),
    min_size=1,
    max_size=5,
).filter(lambda lines: lines[-1].strip(" \t") and lines[0].strip(" \t"))


@given(_BODY_LINES, st.dictionaries(_KEYS, st.sampled_from(["plain text", "true", "7", "'q t'", "2024-01-02"]),
                                    min_size=1, max_size=5))
def test_body_and_attributes_come_back_apart(lines: list[str], values: dict[str, str]) -> None:
    body = "\n".join(lines).rstrip(" \t")
    text = body + "\n\n" + "".join(f":{key}: {value}\n" for key, value in values.items())
    found_body, attributes = split_snip(text)
    assert found_body == body
    assert attributes == {key: yaml_load(f"k: {value}")["k"] for key, value in values.items()}  # type: ignore[index]


def test_a_plain_block_never_touches_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("PyYAML was used for a block of simple lines")

    monkeypatch.setattr(snip, "load_mapping", refuse)
    body, attributes = split_snip(
        "Body.\n\n:created_at: 2018-02-09 15:07:08.358001000 +00:00\n:render_as: Blog\n:is_page: true\n"
        ":author: chris-roos \n:page_title: \"Week: 473\"\n:erb: false\n:count: 3\n:empty:\n"
    )
    assert body == "Body."
    assert attributes == {
        "created_at": "2018-02-09 15:07:08.358001000 +00:00", "render_as": "Blog", "is_page": True,
        "author": "chris-roos", "page_title": "Week: 473", "erb": False, "count": 3, "empty": None,
    }


def test_continuation_lines_go_to_pyyaml_and_keep_their_line_numbers() -> None:
    text = "Body.\n\nmore body\n\n:images:\n  - a.jpg\n  - b.jpg\n:title: x: y\n"
    with pytest.raises(ValueError, match=r"^attributes: line 8: mapping values are not allowed"):
        split_snip(text)
    body, attributes = split_snip(text.replace("x: y", "'x: y'"))
    assert attributes == {"images": ["a.jpg", "b.jpg"], "title": "x: y"}


def test_dates_stay_text_on_both_paths() -> None:
    _, simple = split_snip("B\n\n:created_at: 2024-01-02 10:00:00 +00:00\n:d: 2024-01-02\n")
    _, full = split_snip("B\n\n:created_at: 2024-01-02 10:00:00 +00:00\n:d: 2024-01-02\n:l: [x]\n")
    assert simple["created_at"] == full["created_at"] == "2024-01-02 10:00:00 +00:00"
    assert simple["d"] == full["d"] == "2024-01-02"


def test_json_safe_values_from_yaml_tags() -> None:
    _, attributes = split_snip("B\n\n:when: !!timestamp 2024-01-02 10:00:00\n:bin: !!binary aGk=\n:s: !!set {b, a}\n"
                               ":inf: .inf\n")
    assert attributes == {"when": "2024-01-02T10:00:00", "bin": "aGk=", "s": ["a", "b"], "inf": "inf"}
    json.dumps(attributes, allow_nan=False)


def test_self_referencing_aliases_are_refused() -> None:
    with pytest.raises(ValueError, match="nested too deeply or are too large"):
        split_snip("B\n\n:a: &x [*x]\n")
    laughs = "B\n\n:a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f":{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(6)
    )
    with pytest.raises(ValueError, match="nested too deeply or are too large"):
        split_snip(laughs)
