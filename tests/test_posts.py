"""publisher.posts.read_post: fixture posts against golden files, errors, and fuzzing.

Golden files sit beside their inputs under tests/fixtures/posts/: ``NAME.json``
for a post that reads (``good/``), ``NAME.error`` for one that must not
(``bad/``).  ``PUBLISHER_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_posts.py``
rewrites them; review the diff before committing.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from publisher import snip
from publisher.errors import PostError
from publisher.posts import Post, post_format, read_post

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "posts"
GOOD = FIXTURES / "good"
BAD = FIXTURES / "bad"
REGEN = os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1"
MTIME = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: the "file time" every fixture is read with
SITE_TZ = ZoneInfo("Europe/London")


def post_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and post_format(p.name) is not None)


def read_fixture(path: Path, root: Path = GOOD) -> Post:
    return read_post(path.relative_to(root).as_posix(), path.read_bytes(), MTIME, tz=SITE_TZ)


def as_json(post: Post) -> dict[str, object]:
    return {
        "path": post.path, "name": post.name, "body_format": post.body_format, "title": post.title,
        "created_at": post.created_at.isoformat(), "updated_at": post.updated_at.isoformat(),
        "author": post.author, "kind": post.kind, "tags": list(post.tags), "draft": post.draft, "erb": post.erb,
        "dated_by_mtime": post.dated_by_mtime, "attributes": post.attributes, "body": post.body,
    }


def check_golden(golden: Path, actual: str) -> None:
    if REGEN:
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run with PUBLISHER_REGEN_GOLDEN=1 to write it"
    assert actual == golden.read_text(encoding="utf-8")


# --- golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", post_files(GOOD), ids=lambda p: p.relative_to(GOOD).as_posix())
def test_good_posts_match_their_golden_files(path: Path) -> None:
    post = read_fixture(path)
    check_golden(path.with_name(path.name + ".json"), json.dumps(as_json(post), indent=2, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("path", post_files(BAD), ids=lambda p: p.name)
def test_bad_posts_fail_with_their_golden_message(path: Path) -> None:
    with pytest.raises(PostError) as caught:
        read_fixture(path, BAD)
    error = caught.value
    assert error.path == path.name
    assert str(error) == f"{path.name}: {error.reason}"
    assert "\n" not in str(error)
    assert isinstance(error.__cause__, ValueError)
    check_golden(path.with_name(path.name + ".error"), error.reason + "\n")


def test_every_fixture_has_a_golden_file_and_no_golden_file_is_stale() -> None:
    inputs = {p.relative_to(FIXTURES).as_posix() for p in post_files(FIXTURES)}
    goldens = {
        p.relative_to(FIXTURES).as_posix().rsplit(".", 1)[0] for p in FIXTURES.rglob("*") if p.suffix in (".json", ".error")
    }
    assert goldens == inputs


# --- what the fixtures stand for --------------------------------------------------------------


def good(relative: str) -> Post:
    return read_fixture(GOOD / relative)


def test_a_typical_weeknote() -> None:
    post = good("weeknotes/week-101.snip.markdown")
    assert (post.name, post.title, post.kind, post.body_format) == ("week-101", "Week 101", "blog", "markdown")
    assert post.author == "paula-jones"  # written with a trailing space
    assert post.created_at == datetime(2018, 2, 9, 15, 7, 8, 358001, tzinfo=timezone.utc)
    assert post.updated_at.microsecond == 358025  # nanoseconds truncated
    assert post.body.startswith("This week the workshop") and post.body.endswith("[hub-notes]: /hub-gear-rebuild")
    assert post.attributes["is_page"] is True and post.attributes["name"] == "week-101"
    assert not post.dated_by_mtime and not post.draft and not post.erb


def test_multi_group_block_and_offsets() -> None:
    post = good("weeknotes/week-102.snip.markdown")
    assert post.body == "A short one this week: most of us were at the regional co-op gathering."
    assert set(post.attributes) == {"kind", "author", "page_title", "created_at", "created_sha", "updated_at"}
    assert post.created_at.utcoffset() == timedelta(0)
    assert post.updated_at.utcoffset() == timedelta(hours=-5)


def test_fractions_and_quoted_titles() -> None:
    post = good("weeknotes/week-103.snip.markdown")
    assert post.title == "Week 103 - Half a second late"
    assert post.created_at == datetime(2015, 6, 5, 16, 41, 29, 500000, tzinfo=timezone(timedelta(hours=-5)))


def test_crlf_line_endings() -> None:
    path = GOOD / "blog/windows-line-endings.snip.markdown"
    assert b"\r\n" in path.read_bytes()  # the fixture really is CRLF
    post = read_fixture(path)
    assert "\r" not in post.body and "\r" not in post.title
    assert post.body == "Windows line endings must work.\n\n:smile: in the body\nstill body"
    assert post.tags == ("crlf", "windows")


def test_lines_starting_with_a_colon_in_the_body() -> None:
    post = good("blog/colons-in-the-body.snip.markdown")
    assert ":smile: is a smiling face\n:-) is the old-fashioned way" in post.body
    assert post.body.endswith(":thumbsup: on its own paragraph, followed by a body line\nthat makes it body too.")
    assert set(post.attributes) == {"created_at", "updated_at", "page_title", "author"}


def test_erb_posts_are_flagged_and_keep_their_helpers() -> None:
    links = good("weeklinks/week-101-links.snip.markdown")
    images = good("blog/new-bench-grinder.snip.markdown")
    assert links.erb and images.erb
    assert "<%= by('paula-jones') %>" in links.body
    assert "<%= image_tag('blog/bench-grinder.jpg', alt: 'A bench grinder bolted to the workbench') %>" in images.body
    assert "<%= image_path('blog/grinder-safety.png') %>" in images.body
    assert not good("weeknotes/week-101.snip.markdown").erb


def test_drafts_and_future_posts_are_reported_not_dropped() -> None:
    assert good("blog/reasons-to-visit.snip.markdown").draft
    future = good("blog/summer-opening-hours.snip.markdown")
    assert future.created_at > datetime.now(timezone.utc) and not future.draft


def test_missing_dates_fall_back_to_the_file_time() -> None:
    for name in ("blog/undated.snip.markdown", "blog/no-attributes.snip.markdown"):
        post = good(name)
        assert post.dated_by_mtime
        assert post.created_at == post.updated_at == datetime.fromtimestamp(MTIME, timezone.utc)
        assert post.created_at.tzinfo is not None
    assert good("blog/no-attributes.snip.markdown").title == "Plain Markdown, no attributes"


def test_missing_updated_at_is_created_at() -> None:
    post = read_post("x.snip.markdown", b"Body\n\n:created_at: 2020-01-01 10:00:00 +00:00\n", MTIME)
    assert post.updated_at == post.created_at == datetime(2020, 1, 1, 10, tzinfo=timezone.utc)
    assert not post.dated_by_mtime


def test_naive_dates_use_the_site_timezone() -> None:
    post = good("blog/naive-dates.snip.markdown")
    assert post.created_at.utcoffset() == timedelta(hours=1)  # London in July
    assert post.updated_at == datetime(2024, 12, 1, tzinfo=timezone.utc)  # London in December
    assert read_post("n.md", b"Body\n\n:created_at: 2024-07-01 10:00:00\n", MTIME).created_at.utcoffset() == timedelta(0)


def test_titles_from_headings() -> None:
    assert good("blog/setext-title.snip.markdown").title == "Fixing & Mending"  # not the fenced "# ..."
    assert good("blog/open-evening.snip.html").title == "Open evening & barbecue"  # first of h2/h3, tags stripped
    assert good("front-matter/no-title.html").title == "Title from the HTML heading"
    assert good("people/paula-jones.snip.markdown").title == "paula-jones"  # no title, no heading: the name


def test_text_fields_stay_text_whatever_yaml_says() -> None:
    post = good("blog/number-title.snip.markdown")
    assert (post.title, post.author, post.kind) == ("2012", "yes", "404")
    assert post.tags == ("repairs", "2012", "training")
    assert post.attributes["page_title"] == 2012  # attributes keep YAML's reading


def test_body_format_overrides() -> None:
    html = good("blog/written-in-html.snip.markdown")  # :extension: html
    assert html.body_format == "html"
    assert html.title == "So the title comes from this <h2>"  # the "# ..." line is text in HTML
    assert good("blog/rendered-as-markdown.snip.html").body_format == "markdown"  # :render_as: Markdown
    assert good("blog/reasons-to-visit.snip.markdown").body_format == "markdown"  # :render_as: Blog is a layout
    assert good("blog/open-evening.snip.html").body_format == "html"


def test_a_post_without_snip_in_its_name() -> None:
    post = good("blog/what-we-fixed.markdown")
    assert post.name == "what-we-fixed" and post.path == "blog/what-we-fixed.markdown"


def test_lists_continuations_and_quotes() -> None:
    post = good("projects/tool-library.snip.markdown")
    assert post.attributes["images"] == ["library-shelves.jpg", "library-counter.jpg"]
    assert post.attributes["display_name"] == "Tool library #2"
    assert post.attributes["site"] == "tools.example.org"
    extras = good("blog/yaml-extras.snip.markdown").attributes
    assert extras["summary"] == "Two lines\nof summary.\n" and extras["again"] == extras["helpers"]
    assert extras["tags"] == ["yaml", "attributes", 3] and extras["sizes"] == {"small": 1, "large": 2.5}


def test_front_matter_posts() -> None:
    jekyll = good("front-matter/jekyll-style.md")
    assert (jekyll.name, jekyll.title, jekyll.author) == ("spring-clean", "Spring clean: what we threw away", "paula-jones")
    assert jekyll.tags == ("cleaning", "workshop")
    assert jekyll.body.endswith(":not-an-attribute: front matter posts have no trailing block")
    hugo = good("front-matter/hugo-style.markdown")
    assert (hugo.title, hugo.author, hugo.kind, hugo.draft) == ("Autumn open day", "sam-okafo", "event", False)
    assert hugo.updated_at == datetime(2024, 10, 7, tzinfo=SITE_TZ)  # lastmod, date only
    assert hugo.tags == ("open day", "autumn")
    pelican = good("front-matter/pelican-style.md")
    assert (pelican.title, pelican.kind, pelican.draft) == ("2025", "blog", True)


# --- errors -----------------------------------------------------------------------------------


def test_errors_name_the_source() -> None:
    with pytest.raises(PostError) as caught:
        read_post("blog/x.md", b"\xff", MTIME, source="/srv/site/posts/blog/x.md")
    assert str(caught.value) == (
        "/srv/site/posts/blog/x.md: not valid UTF-8 at byte 0 (invalid start byte): save the file as UTF-8"
    )


def test_a_byte_order_mark_is_dropped() -> None:
    post = read_post("bom.md", "\ufeff# Title\n\nBody\n".encode(), MTIME)
    assert post.title == "Title" and post.body.startswith("# Title")


def test_a_file_name_that_is_not_a_post() -> None:
    with pytest.raises(PostError, match="not a post file name"):
        read_post("notes.txt", b"Body", MTIME)


def test_an_unusable_file_time_for_an_undated_post() -> None:
    with pytest.raises(PostError, match="no created_at and the file time"):
        read_post("x.md", b"Body", 1e20)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("week-1.snip.markdown", "markdown"), ("a.md", "markdown"), ("a.MDOWN", "markdown"), ("a.markdown", "markdown"),
        ("a.snip.html", "html"), ("a.htm", "html"), ("blog/a.snip.markdown", "markdown"), ("a.txt", None),
        ("a.markdown~", None), (".a.md", None), (".md", None), ("README", None), ("a.md.swp", None), ("dir/", None),
        ("a.json", None), ("a.snip", None),
    ],
)
def test_post_format(name: str, expected: str | None) -> None:
    assert post_format(name) == expected


# --- speed: the common case never reaches PyYAML --------------------------------------------------


def test_typical_posts_are_read_without_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("PyYAML was used for a typical snip")

    monkeypatch.setattr(snip, "load_mapping", refuse)
    for name in ("weeknotes/week-101.snip.markdown", "weeklinks/week-101-links.snip.markdown",
                 "blog/new-bench-grinder.snip.markdown", "blog/reasons-to-visit.snip.markdown"):
        assert good(name).title


# --- fuzzing: nothing but PostError -------------------------------------------------------------


def check_post(post: Post) -> None:
    assert post.created_at.utcoffset() is not None and post.updated_at.utcoffset() is not None
    assert isinstance(post.title, str) and post.title
    assert post.body_format in ("markdown", "html")
    assert all(isinstance(tag, str) and tag for tag in post.tags)
    assert post.author is None or isinstance(post.author, str)
    assert post.kind is None or isinstance(post.kind, str)
    json.dumps(post.attributes, allow_nan=False)


def read_or_post_error(path: str, data: bytes) -> Post | None:
    try:
        post = read_post(path, data, MTIME, tz=SITE_TZ)
    except PostError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(path + ": ")
        return None
    check_post(post)
    return post


@given(st.binary(max_size=300), st.sampled_from(["", "---\n", "Body\n\n:created_at: ", "Body\n\n:"]))
@example(b"", "")
@example(b"\r\n\r\n", "")
@example(b"\n\n:a: 1", "")
def test_arbitrary_bytes_give_a_post_or_a_post_error(data: bytes, prefix: str) -> None:
    read_or_post_error("fuzz/any.snip.markdown", prefix.encode() + data)


_FIELDS = st.sampled_from(
    ["created_at", "updated_at", "page_title", "author", "kind", "draft", "erb", "tags", "render_as", "extension",
     "name", "title", "date", "slug", "lastmod", "authors", "type", "x"]
)
_DATES = st.builds(
    lambda d, shape: d.strftime(shape),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from(["%Y-%m-%d %H:%M:%S +0000", "%Y-%m-%d %H:%M:%S.%f -05:00", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"]),
)
_IMPOSSIBLE = st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}( [+-][0-9]{2}:?[0-9]{2})?",
                            fullmatch=True)
_VALUES = st.one_of(
    _DATES, _IMPOSSIBLE, st.text(max_size=15),
    st.sampled_from(["true", "false", "maybe", "2012", "1.5", "[a, b]", "{a: 1}", "[]", "{}", "~", "''", "'x: y'",
                     "\n  - one\n  - two", "\n  - [x]", "\n  k: v", "|\n  block", "&a x", "*a", "!!binary aGk=",
                     "!!timestamp 2001-01-01", "Markdown", "HTML", "html", "md", "Blog", "a, b,, c", "a/b", "x y"]),
)


@given(st.lists(st.tuples(_FIELDS, _VALUES), max_size=8), st.sampled_from(["snip", "front matter"]),
       st.text(max_size=20))
def test_arbitrary_attributes_give_a_post_or_a_post_error(
    pairs: list[tuple[str, str]], style: str, body: str
) -> None:
    if style == "snip":
        text = body + "\n\n" + "".join(f":{key}: {value}\n" for key, value in pairs)
    else:
        text = "---\n" + "".join(f"{key}: {value}\n" for key, value in pairs) + "---\n" + body
    read_or_post_error("fuzz/attrs.md", text.encode("utf-8", "surrogatepass"))


@given(_DATES)
def test_any_written_date_is_read(date_text: str) -> None:
    post = read_or_post_error("d.md", f"Body\n\n:created_at: {date_text}\n".encode())
    assert post is not None and not post.dated_by_mtime


# --- the sample site shipped for the quick start ------------------------------------------------

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "posts"


def test_the_sample_site_reads_and_shows_every_feature() -> None:
    posts = [read_fixture(path, SAMPLE) for path in post_files(SAMPLE)]
    assert {post.path.split("/")[0] for post in posts} == {"weeknotes", "blog"}
    assert 10 <= len(posts) <= 15
    assert [post.name for post in posts if post.draft] == ["a-four-day-week"]
    assert not any(post.dated_by_mtime for post in posts)
    assert {post.body_format for post in posts} == {"markdown", "html"}
    front_matter = [p for p in post_files(SAMPLE) if p.read_text(encoding="utf-8").startswith("---\n")]
    assert len(front_matter) >= 2
    bodies = "\n".join(post.body for post in posts)
    for feature in ("<%= by('", "<%= image_tag('", "<%= image_path('", "](/week-3#lunch)", "](/about)", "[guide]: ",
                    "|------", "```sh", "[^days]: "):
        assert feature in bodies, feature
    assert all(post.erb for post in posts if "<%" in post.body)
    created = sorted(post.created_at for post in posts)
    assert (created[-1] - created[0]).days > 60  # a few months of posts
