"""The parser's fast paths give what the general code gives, for any input.

Reading posts is most of a first build's work, so the common shapes have
shortcuts: the trailing block of simple ``:key: value`` lines
(:func:`publisher.snip._common_block` and ``_read_lines``), the plain words,
titles and dates of :func:`publisher.snip.parse_scalar`, the last date of
:func:`publisher.dates.parse_date` remembered.  Each is checked here against
the general path it stands for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from publisher import dates, snip


def outcome(function: Callable[..., object], *args: object) -> tuple[object, ...]:
    """What ``function(*args)`` returns, or the ValueError or TypeError it raises (type and message)."""
    try:
        return ("value", function(*args))
    except (ValueError, TypeError) as exc:
        return ("error", type(exc), str(exc))


# --- the snip's trailing block -----------------------------------------------------------------

_ATTRIBUTE_LINES = st.sampled_from(
    [
        ":a: b", ":render_as: Blog", ":kind: blog", ":is_page: true", ":page_title: Week 4: the end", ":k:", ":k:   ",
        ":created_at: 2018-02-09 15:07:08.358001000 +00:00", ":updated_at: 2020-03-10 01:09:13 +0000", ":n: 42",
        ":author: chris-roos ", ":k: \tx", ":q: 'it''s'", ':d: "O2 #blue"', ":t: a #b", ":l: [x, y]", ":m: {a: 1}",
        ":a.b?: c", ":x-1: No", ":e: ~", ":f: 1.5", ":o: 0777", ":u: \u2028", ":w: caf\u00e9", ":s: :smile:", ":a:b",
        ":a:\tb", ":tags: a, b", ":erb: false", ":draft: yes", ":date: 2024-01-02", ":a: b:", ":r: x\r",
    ]
)
_OTHER_LINES = st.sampled_from(
    ["", " ", "\t", "  \t", "body text", "Body.", ":smile: here", ":-)", "- item", "-", "  - x", "    code", "#", "::",
     ": x", "---", "\u3000", "[ref]: /x", "<h2>Hi</h2>"]
)
_ANY_LINE = st.text(alphabet=st.sampled_from(list(":ab -\t#'\"0123\n\r\u2028\u00e9xyz,.")), max_size=12)
_LINE = st.one_of(_ATTRIBUTE_LINES, _ATTRIBUTE_LINES, _OTHER_LINES, _ANY_LINE)
_VALUE_TEXT = st.one_of(
    st.sampled_from(["Blog", "blog", "true", "No", "~", "7", "-3", "Week 12", "a, b", "x #y", "'q'", "2024-01-02", ""]),
    st.text(alphabet=st.sampled_from(list("aZ09- .,yesNO~\u00e9")), max_size=10),
    st.text(alphabet=st.sampled_from(list("aZ09-: #'\"\t.yesNO~\u00e9\u2028")), max_size=10),
    st.builds(lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f000 +00:00"), st.datetimes()),
)
_SIMPLE_LINE = st.builds(  # mostly lines the common path reads
    lambda key, spaces, value: f":{key}:{spaces}{value}",
    st.one_of(st.sampled_from(["kind", "page_title", "created_at", "a"]), st.from_regex(r"[A-Za-z0-9_][\w.?!-]{0,5}",
                                                                                       fullmatch=True)),
    st.sampled_from([" ", " ", " ", "  ", " ", " ", " ", ""]),
    _VALUE_TEXT,
)
_BLOCK_LINE = st.one_of(*[_SIMPLE_LINE] * 6, _ATTRIBUTE_LINES, _LINE)
_SNIPS = st.builds(
    lambda body, gap, block, end: "\n".join(body) + gap + "\n".join(block) + end,
    st.lists(st.one_of(st.sampled_from(["Body.", "Some *text*", "[ref]: /x", "# Title"]), _OTHER_LINES, _LINE),
             max_size=5),
    st.sampled_from(["\n\n", "\n\n", "\n\n", "\n\n\n", "\n", "\n \n", ""]),
    st.lists(_BLOCK_LINE, max_size=8),
    st.sampled_from(["", "\n", "\n", "\n\n", " ", "\n  ", "\t\n"]),
)
_PARAGRAPHS = st.one_of(
    st.sampled_from(["Body.", "Some *text*\nover two lines", "[ref]: /x\n[two]: /y", "# Title", "* a\n  b", "Text "]),
    st.one_of(
        st.sampled_from(["    code", ":smile: hi", "x\n  \ny", "\ttab", ":a: glued\nbody", "x\n\t", "x\n \n:c: 3",
                         "x\n\t\n:c: 3\n:d: 4", " \n:c: 3"]),
        st.lists(_LINE, min_size=1, max_size=3).map("\n".join),
    ),
)
_COMMON_SNIPS = st.builds(  # mostly the common shape: paragraphs, an empty line, a block of simple lines
    lambda paragraphs, first, block, end: "\n\n".join(paragraphs) + "\n\n" + "\n".join([first, *block]) + end,
    st.lists(_PARAGRAPHS, max_size=3),
    _SIMPLE_LINE,
    st.lists(st.one_of(_SIMPLE_LINE, st.one_of(_SIMPLE_LINE, _ATTRIBUTE_LINES, _OTHER_LINES)), max_size=7),
    st.sampled_from(["", "\n", "\n", "\n\n", " \n"]),
)
_TYPICAL = (
    "Some *body*.\n\n* a list\n  continued\n\n[ref]: https://example.com/a\n\n:render_as: Blog\n:kind: blog\n"
    ":is_page: true\n:author: kit-marsh\n:created_at: 2020-03-10 01:09:13 +0000\n"
    ":updated_at: 2020-03-10 01:09:13 +0000\n:page_title: A title - with a dash\n"
)


@settings(max_examples=300)  # a sixth of the common shapes get through the fast path, a third fall back half-way
@given(st.one_of(_COMMON_SNIPS, _COMMON_SNIPS, _SNIPS))
@example(_TYPICAL)
@example("\n\n:a: 1\n")
@example(":a: 1\n\n:b: 2\n")
@example("x\n  \ny\n\n:a: 1")
@example("Body\n  \n:c: 3\n\n:a: 1")  # a line of blanks above: ":c: 3" starts the block
@example("Body\n\n:kind: blog\n:kind\n")  # ":kind" alone is no attribute line, though ":kind: " was one
@example("Body\n\n:a:\n:a:: x\n")  # nor is ":a:: x", though ":a:" was one
@example("Body\n\n:a: 1\n:a: x\n")
@example("Body\n\n:a: true\n:a: x\n")
def test_the_common_block_reads_as_the_general_reader_does(text: str) -> None:
    assert outcome(snip.read_snip, text) == outcome(snip._read_any, text)
    common = snip._common_block(text)
    if common is not None and snip._read_lines(text[common[0] : common[1]].split("\n")) is not None:
        assert common[0] == snip.find_block(text)
        assert not text[common[2] : common[0]].strip("\n")


@given(st.lists(_BLOCK_LINE.filter(lambda line: line and "\n" not in line), min_size=1, max_size=8))
def test_reading_lines_one_by_one_agrees_with_the_block_parser(lines: list[str]) -> None:
    block = "\n".join(lines)
    assume(snip._GROUP.fullmatch(block))  # what find_block gives _parse_simple: a group of attribute lines
    snip._KNOWN_LINES.clear()
    fresh = snip._read_lines(lines)
    assert fresh == snip._parse_simple(block)
    assert snip._read_lines(lines) == fresh  # and so do the lines remembered


def test_typical_snips_take_the_common_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise AssertionError(f"the general reader was used for {text[:40]!r}")

    monkeypatch.setattr(snip, "_read_any", refuse)
    body, attributes, raw = snip.read_snip(_TYPICAL)
    assert body.startswith("Some *body*.") and body.endswith("/a")
    assert attributes["page_title"] == "A title - with a dash" and attributes["is_page"] is True
    assert raw == {"is_page": "true"}


def test_remembered_lines_are_forgotten_when_there_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snip, "_KNOWN_MAX", 4)
    monkeypatch.setattr(snip, "_KNOWN_LINES", {})
    monkeypatch.setattr(snip, "_LINES_OF_KEY", {})
    for n in range(10):
        assert snip._read_lines([f":n: {n}", ":kind: blog"]) == ({"n": n, "kind": "blog"}, {"n": str(n)})
        assert len(snip._KNOWN_LINES) <= 4


def test_lines_of_a_key_that_never_recur_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snip, "_UNIQUE_AFTER", 3)
    monkeypatch.setattr(snip, "_KNOWN_LINES", {})
    monkeypatch.setattr(snip, "_LINES_OF_KEY", {})
    for n in range(10):
        lines = [f":created_at: 2024-01-02 10:00:0{n}", ":kind: blog"]
        assert snip._read_lines(lines) == ({"created_at": f"2024-01-02 10:00:0{n}", "kind": "blog"}, {})
    assert sorted(snip._KNOWN_LINES) == [":created_at: 2024-01-02 10:00:00", ":created_at: 2024-01-02 10:00:01",
                                         ":created_at: 2024-01-02 10:00:02", ":kind: blog"]


# --- scalars -----------------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.sampled_from(list("aZ09-: #'\"\t.:yesNOtruFl~\u2028\u00e9")), min_size=1, max_size=14),
    st.builds(lambda d: d.strftime("%Y-%m-%d %H:%M:%S +0000"), st.datetimes()),
    st.sampled_from(["Blog", "true", "yes", "Off", "null", "2012", "2012-", "Week 4", "a: b", "a #b", "ends:", "x ",
                     "1e3", "0x1f", "\u0663\u0663\u0663\u0663-", "2024-01-02 09:30:00 #x", "2024-\u2028"]),
)


@given(_SCALARS)
def test_the_quick_scalar_cases_agree_with_the_full_rules(text: str) -> None:
    text = text.strip(" ") or "x"
    quick, full = snip.parse_scalar(text), snip._parse_scalar(text)
    assert quick == full and type(quick) is type(full)


# --- dates -------------------------------------------------------------------------------------


def old_iso_shape(text: str) -> bool:
    """The test dates.py made before its one regex: its length, dash and separator, then the characters."""
    return (len(text) >= 10 and text[4] == "-" and text[10:11] in ("", " ", "T")
            and all(ch in "0123456789:.,+TZ -" for ch in text))


@given(st.one_of(st.text(alphabet=st.sampled_from(list("0123456789:.,+TZ -tzW\u0663")), max_size=30),
                 st.builds(lambda d: d.isoformat(sep=" "), st.datetimes())))
@example("2024-01-02")
@example("2024-01-02x10:00")
def test_the_iso_shape_regex_is_the_old_test(text: str) -> None:
    assert (dates._ISO_SHAPE.fullmatch(text) is not None) == old_iso_shape(text)


@given(st.lists(st.sampled_from(["2024-01-02 09:30:00", "2024-07-02 09:30", "2024-01-02 09:30:00 +05:00",
                                 "2013-02-30", " 2024-01-02 "]), min_size=1, max_size=6),
       st.lists(st.sampled_from([timezone.utc, ZoneInfo("Europe/London"), timezone(timedelta(hours=-5))]), min_size=1,
                max_size=6))
def test_the_remembered_date_is_the_one_for_that_text_and_timezone(texts: list[str], zones: list[object]) -> None:
    for text, tz in zip(texts, zones * len(texts)):
        remembered = outcome(dates.parse_date, text, tz)
        fresh = outcome(dates._parse_text, text, tz)
        assert remembered == fresh
        if remembered[0] == "value":  # the same moment, and the same zone too
            assert remembered[1].tzinfo == fresh[1].tzinfo  # type: ignore[union-attr]
