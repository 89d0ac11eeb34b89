"""Atom, RSS and JSON Feed output: golden files, the validator's rules, feed readers' view.

``PUBLISHER_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_feeds.py`` rewrites the golden
files in tests/fixtures/feeds/ from the current output; read the diff before committing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from calendar import timegm
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
import lxml.html
from lxml import etree

from tests import feedcheck
from publisher.errors import RenderError
from publisher.feeds.model import (
    FORMATS,
    MEDIA_TYPES,
    Entry,
    Feed,
    Person,
    discovery_links,
    render,
)

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "feeds"
STYLESHEET = HERE.parent / "templates" / "feed.xsl"
REGEN = os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1"
SUFFIXES = {"atom": ".atom.xml", "rss": ".rss.xml", "json": ".json"}
CHECKS = {"atom": feedcheck.check_atom, "rss": feedcheck.check_rss, "json": feedcheck.check_json}


# --------------------------------------------------------------------------- fixtures


def _person(data: dict | None) -> Person | None:
    return None if data is None else Person(data["name"], data.get("uri"), data.get("email"))


def _entry(data: dict) -> Entry:
    return Entry(
        id=data["id"],
        url=data["url"],
        title=data["title"],
        content_html=data["content_html"],
        summary_html=data["summary_html"],
        published=datetime.fromisoformat(data["published"]),
        updated=datetime.fromisoformat(data["updated"]),
        author=_person(data["author"]),
        categories=tuple(data["categories"]),
    )


def _feed(data: dict) -> Feed:
    feed = dict(data["feed"])
    return Feed(
        **{key: feed[key] for key in ("id", "title", "home_url", "self_urls", "subtitle", "language", "icon", "stylesheet")},
        updated=datetime.fromisoformat(feed["updated"]),
        author=_person(feed["author"]),
        entries=tuple(_entry(entry) for entry in data["entries"]),
    )


RAW = json.loads((FIXTURES / "feeds.json").read_text(encoding="utf-8"))
FEEDS = {name: _feed(data) for name, data in RAW.items()}
CASES = [(name, fmt) for name in FEEDS for fmt in FORMATS]
CASE_IDS = [f"{name}-{fmt}" for name, fmt in CASES]


def _entry_at(index: int, when: datetime, **changes) -> Entry:
    fields = dict(
        id=f"tag:example.org,2019-01-01:/post-{index}",
        url=f"https://example.org/post-{index}",
        title=f"Post {index} — caf\u00e9 & <b> claims",
        content_html=f"<p>Post {index}: <a href=\"https://example.org/post-{index}#more\">more</a> &amp; \u00e9t\u00e9 \U0001f680</p>"
        * 5,
        summary_html=f"<p>Summary of post {index}.</p>",
        published=when,
        updated=when,
        author=Person("Ada") if index % 2 else None,
        categories=("one", "two"),
    )
    fields.update(changes)
    return Entry(**fields)


def _big_feed(count: int = 20) -> Feed:
    start = datetime(2019, 6, 30, 12, tzinfo=timezone.utc)
    entries = tuple(_entry_at(i, start - timedelta(days=i)) for i in range(count))
    return replace(FEEDS["weeknotes"], entries=entries, updated=entries[0].updated)


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=CASE_IDS)
def test_output_matches_golden_file(name, fmt):
    output = render(FEEDS[name], fmt)
    golden = FIXTURES / f"{name}{SUFFIXES[fmt]}"
    if REGEN:
        golden.write_bytes(output)
    assert golden.exists(), f"{golden} missing: run with PUBLISHER_REGEN_GOLDEN=1 to create it"
    assert output == golden.read_bytes()


# --------------------------------------------------------------------------- the validator's rules


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=CASE_IDS)
def test_output_has_no_errors_or_warnings(name, fmt):
    feed = FEEDS[name]
    assert CHECKS[fmt](render(feed, fmt), feed.self_urls[fmt]) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_twenty_entry_feed_is_clean(fmt):
    feed = _big_feed()
    assert CHECKS[fmt](render(feed, fmt), feed.self_urls[fmt]) == []


@pytest.mark.parametrize("name", list(FEEDS))
def test_atom_output_is_valid_against_the_rfc_4287_schema(name):
    schema = etree.RelaxNG(etree.parse(str(FIXTURES / "atom.rng")))
    assert schema.validate(etree.fromstring(render(FEEDS[name], "atom"))), schema.error_log


def test_rss_has_no_relative_url_anywhere():
    root = etree.fromstring(render(FEEDS["weeknotes"], "rss"))
    urls = [el.text for el in root.iter("link", "docs", "comments")]
    urls += [el.get("href") for el in root.iter("{http://www.w3.org/2005/Atom}link")]
    urls += [el.text for el in root.iter("guid") if el.get("isPermaLink") == "true"]
    html = [el.text for el in root.iter("description", "{http://purl.org/rss/1.0/modules/content/}encoded")]
    for fragment in html:
        urls += re.findall(r"""(?:href|src)\s*=\s*["']([^"']*)["']""", fragment or "")
    assert len(urls) > 10  # the channel, each item and their HTML were all looked at
    assert [url for url in urls if not re.match(r"^[a-z][a-z0-9+.-]*:", url or "")] == []


# --------------------------------------------------------------------------- what feed readers see


def _utc(value: str) -> datetime:
    """A fixture time as the feeds write it: whole seconds, in UTC for comparison."""
    return datetime.fromisoformat(value).replace(microsecond=0).astimezone(timezone.utc)


def _parsed_utc(struct) -> datetime:
    return datetime.fromtimestamp(timegm(struct), timezone.utc)


@pytest.mark.parametrize("name", list(FEEDS))
@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_feedparser_reads_entries_as_given(name, fmt):
    raw = RAW[name]
    parsed = feedparser.parse(render(FEEDS[name], fmt))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == raw["feed"]["title"]
    assert parsed.feed.link == raw["feed"]["home_url"]
    assert len(parsed.entries) == len(raw["entries"])
    for got, expected in zip(parsed.entries, raw["entries"]):
        assert got.id == expected["id"]
        assert got.link == expected["url"]
        assert got.title == expected["title"]
        assert _parsed_utc(got.published_parsed) == _utc(expected["published"])
        if expected["author"]:
            assert got.author_detail.name == expected["author"]["name"]
        elif fmt == "rss":  # dc:creator falls back to the feed's author
            assert got.author == raw["feed"]["author"]["name"]
        assert [tag.term for tag in got.get("tags", [])] == list(dict.fromkeys(expected["categories"]))


@pytest.mark.parametrize("name", list(FEEDS))
def test_atom_updated_times_are_the_given_ones_and_distinct(name):
    raw = RAW[name]
    parsed = feedparser.parse(render(FEEDS[name], "atom"))
    updated = [_parsed_utc(entry.updated_parsed) for entry in parsed.entries]
    assert len(set(updated)) == len(updated)
    for got, expected in zip(updated, raw["entries"]):
        assert timedelta(0) <= got - _utc(expected["updated"]) < timedelta(seconds=5)
    assert all(_parsed_utc(parsed.feed.updated_parsed) >= got for got in updated)


def test_same_updated_time_moves_the_newer_entry_one_second_later():
    feed = FEEDS["weeknotes"]
    links, show = feed.entries[1], feed.entries[2]
    assert links.updated == show.updated  # the fixture's two date-only posts of one day
    parsed = feedparser.parse(render(feed, "atom"))
    assert _parsed_utc(parsed.entries[1].updated_parsed) == links.updated + timedelta(seconds=1)
    assert _parsed_utc(parsed.entries[2].updated_parsed) == show.updated
    assert _parsed_utc(parsed.entries[1].published_parsed) == links.published  # still that day, unchanged
    data = json.loads(render(feed, "json"))
    assert datetime.fromisoformat(data["items"][1]["date_modified"]) == links.updated + timedelta(seconds=1)


def test_feed_updated_is_never_before_an_entry():
    day = datetime(2019, 1, 1, tzinfo=timezone.utc)
    feed = replace(FEEDS["weeknotes"], entries=(_entry_at(1, day), _entry_at(2, day)), updated=day)
    parsed = feedparser.parse(render(feed, "atom"))
    assert _parsed_utc(parsed.feed.updated_parsed) == day + timedelta(seconds=1)
    assert "Tue, 01 Jan 2019 00:00:01 +0000" in render(feed, "rss").decode()


def test_kathmandu_offset_is_written_in_utc_and_fractions_dropped():
    feed = FEEDS["weeknotes"]
    rss = render(feed, "rss").decode()
    atom = render(feed, "atom").decode()
    assert "Mon, 05 Feb 2018 03:30:00 +0000" in rss  # 09:15+05:45
    assert "<updated>2018-02-06T04:45:00+00:00</updated>" in atom  # 10:30:00.999999+05:45
    assert not re.search(r"<(updated|published)>[^<]*\+05:45<", atom) and "+0545<" not in rss


@pytest.mark.parametrize("name", list(FEEDS))
def test_json_feed_items_match_the_entries(name):
    raw = RAW[name]
    data = json.loads(render(FEEDS[name], "json"))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert data["title"] == raw["feed"]["title"]
    assert data["home_page_url"] == raw["feed"]["home_url"]
    assert data["feed_url"] == raw["feed"]["self_urls"]["json"]
    assert [item["id"] for item in data["items"]] == [entry["id"] for entry in raw["entries"]]
    for item, entry in zip(data["items"], raw["entries"]):
        assert item["url"] == entry["url"]
        assert item["title"] == entry["title"]
        assert item["content_html"] == entry["content_html"]
        summary = " ".join(lxml.html.fromstring(entry["summary_html"]).text_content().split()) if entry["summary_html"] else None
        assert item.get("summary") == summary
        assert datetime.fromisoformat(item["date_published"]) == _utc(entry["published"])
        assert item.get("tags", []) == list(dict.fromkeys(entry["categories"]))
        expected = [entry["author"]["name"]] if entry["author"] else None
        assert ([a["name"] for a in item["authors"]] if "authors" in item else None) == expected


def test_feed_author_stands_in_for_entries_without_one():
    feed = FEEDS["weeknotes"]
    atom = etree.fromstring(render(feed, "atom"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert atom.xpath("a:author/a:name/text()", namespaces=ns) == [feed.author.name]
    rss = etree.fromstring(render(feed, "rss"))
    creators = [item.findtext("{http://purl.org/dc/elements/1.1/}creator") for item in rss.iter("item")]
    assert creators == [(entry.author or feed.author).name for entry in feed.entries]
    assert not list(rss.iter("author"))  # RSS <author> must be an e-mail address: names go in dc:creator


def test_feed_without_author_whose_entries_all_have_one_has_no_feed_author():
    atom = etree.fromstring(render(FEEDS["all-authored"], "atom"))
    assert atom.find("{http://www.w3.org/2005/Atom}author") is None


def test_empty_feed_without_author_gets_the_site_as_author():
    feed = FEEDS["empty"]
    parsed = feedparser.parse(render(feed, "atom"))
    assert parsed.feed.author_detail.name == feed.title
    assert parsed.feed.author_detail.href == feed.home_url
    assert json.loads(render(feed, "json"))["authors"] == [{"name": feed.title, "url": feed.home_url}]


def test_each_atom_entry_has_exactly_one_alternate_link_and_the_feed_self_and_alternate():
    atom = etree.fromstring(render(FEEDS["weeknotes"], "atom"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    for entry in atom.findall("a:entry", ns):
        links = entry.findall("a:link", ns)
        assert [(link.get("rel"), link.get("type")) for link in links] == [("alternate", "text/html")]
    feed_links = {(link.get("rel"), link.get("type"), link.get("href")) for link in atom.findall("a:link", ns)}
    assert feed_links == {
        ("self", "application/atom+xml", FEEDS["weeknotes"].self_urls["atom"]),
        ("alternate", "text/html", FEEDS["weeknotes"].home_url),
    }


def test_rss_self_link_and_guids():
    feed = FEEDS["weeknotes"]
    rss = etree.fromstring(render(feed, "rss"))
    self_links = rss.findall("channel/{http://www.w3.org/2005/Atom}link")
    assert [(l.get("rel"), l.get("type"), l.get("href")) for l in self_links] == [
        ("self", "application/rss+xml", feed.self_urls["rss"])
    ]
    guids = [(g.text, g.get("isPermaLink")) for g in rss.iter("guid")]
    assert guids == [(e.id, "true" if e.id == e.url else "false") for e in feed.entries]


def test_stylesheet_processing_instruction():
    for fmt in ("atom", "rss"):
        output = render(FEEDS["weeknotes"], fmt)
        assert output.splitlines()[1] == b'<?xml-stylesheet type="text/xsl" href="/weeknotes/feed.xsl"?>'
        assert b"xml-stylesheet" not in render(FEEDS["all-authored"], fmt)


# --------------------------------------------------------------------------- determinism and order


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=CASE_IDS)
def test_rendering_is_deterministic(name, fmt):
    first = render(FEEDS[name], fmt)
    again = render(_feed(json.loads((FIXTURES / "feeds.json").read_text(encoding="utf-8"))[name]), fmt)
    assert first == again == render(FEEDS[name], fmt)


def test_no_feedgen_default_leaks_into_output():
    for fmt in ("atom", "rss"):
        output = render(FEEDS["weeknotes"], fmt).decode()
        assert "feedgen" not in output and "lkiesow" not in output
        year = str(datetime.now(timezone.utc).year)
        assert year not in output or year in json.dumps(RAW["weeknotes"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_entry_order_is_preserved_even_when_not_by_date(fmt):
    start = datetime(2019, 6, 30, tzinfo=timezone.utc)
    entries = (_entry_at(0, start), _entry_at(1, start + timedelta(days=3)), _entry_at(2, start - timedelta(days=1)))
    feed = replace(FEEDS["weeknotes"], entries=entries)
    output = render(feed, fmt)
    if fmt == "json":
        ids = [item["id"] for item in json.loads(output)["items"]]
    else:
        ids = [entry.id for entry in feedparser.parse(output).entries]
    assert ids == [entry.id for entry in entries]


# --------------------------------------------------------------------------- errors


def test_naive_published_is_rejected_with_a_clear_error():
    with pytest.raises(RenderError) as error:
        _entry_at(7, datetime(2019, 1, 1, 12, 0))
    message = str(error.value)
    assert "tag:example.org,2019-01-01:/post-7" in message and "published" in message and "timezone" in message
    assert "\n" not in message


def test_naive_updated_is_rejected_for_entries_and_feeds():
    aware = datetime(2019, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(RenderError, match="updated"):
        _entry_at(1, aware, updated=datetime(2019, 1, 1))
    with pytest.raises(RenderError, match=r"tag:example.org,2010:/weeknotes: updated"):
        replace(FEEDS["weeknotes"], updated=datetime(2019, 1, 1))


def test_missing_self_url_is_a_clear_error():
    feed = replace(FEEDS["weeknotes"], self_urls={"atom": "https://example.org/a.atom"})
    for fmt in ("rss", "json"):
        with pytest.raises(RenderError, match=f'no "{fmt}" URL'):
            render(feed, fmt)


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="unknown feed format"):
        render(FEEDS["weeknotes"], "rdf")


# --------------------------------------------------------------------------- odd text survives


def _xml_safe(text: str) -> str:
    """``text`` less what no feed may carry (XML-forbidden, control and non-characters),
    on one line."""
    kept = "".join(
        c for c in text
        if (c in "\t\n\r" or " " <= c < "\x7f" or "\xa0" <= c) and c != "\ufffd"
        and not ("\ufdd0" <= c <= "\ufdef" or (ord(c) & 0xFFFE) == 0xFFFE)
    )
    return re.sub(r"[\r\n]+", " ", kept)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(min_size=1, max_size=40),
    category=st.text(min_size=1, max_size=15),
    body=st.text(max_size=60),
    name=st.text(min_size=1, max_size=20),
)
def test_any_text_gives_clean_feeds_that_read_back(title, category, body, name):
    # The validator warns about HTML end tags in any plain-text element, which no
    # escaping avoids in RSS; e-mail addresses in names, and text that looks like
    # double-encoded UTF-8, likewise.  Titles, names and categories must also hold
    # something once the XML-unsafe characters are gone.
    for text in (title, category, name):
        assume(_xml_safe(text).strip() and not re.search(r"</\w+>|<[^>]*@", text))
    for text in (title, category, name, body):
        assume(not feedcheck.looks_double_encoded(_xml_safe(text)))  # "Â¡" is mojibake to the validator
    assume(_xml_safe(name).strip() == _xml_safe(name))
    from html import escape

    entry = _entry_at(1, datetime(2019, 1, 1, tzinfo=timezone.utc), title=title, categories=(category,),
                      content_html=f"<p>{escape(body)}</p>", author=Person(name))
    feed = replace(FEEDS["weeknotes"], entries=(entry,), updated=entry.updated)
    for fmt in FORMATS:
        assert CHECKS[fmt](render(feed, fmt), feed.self_urls[fmt]) == [], fmt
    assert not feedparser.parse(render(feed, "atom")).bozo
    for fmt, path in (("atom", "{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title"),
                      ("rss", "channel/item/title")):
        assert etree.fromstring(render(feed, fmt)).findtext(path) == _xml_safe(title), fmt
    assert json.loads(render(feed, "json"))["items"][0]["title"] == _xml_safe(title)


# --------------------------------------------------------------------------- the stylesheet


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_stylesheet_shows_a_readable_page(fmt):
    feed = FEEDS["weeknotes"]
    transform = etree.XSLT(etree.parse(str(STYLESHEET)))
    page = str(transform(etree.fromstring(render(feed, fmt))))
    html = etree.HTML(page)
    assert html.findtext(".//h1") == feed.title
    assert "This is a web feed: copy its URL into your feed reader to subscribe" in page
    assert feed.self_urls[fmt] in page
    titles = html.xpath("//li/h2/a")
    assert [(a.text, a.get("href")) for a in titles] == [(e.title, e.url) for e in feed.entries]
    assert "We shipped the café résumé builder 🎉 & met <details>." in "".join(html.xpath("//li[1]//p//text()"))
    assert html.find(".//style") is not None
    assert html.xpath("//script") == []


def test_stylesheet_shows_an_empty_feed():
    transform = etree.XSLT(etree.parse(str(STYLESHEET)))
    page = str(transform(etree.fromstring(render(FEEDS["empty"], "rss"))))
    assert "Nothing has been published here yet." in page
    assert FEEDS["empty"].title in page


def test_stylesheet_fetches_nothing_and_runs_nothing():
    source = STYLESHEET.read_text(encoding="utf-8")
    xsl = etree.parse(str(STYLESHEET))
    assert xsl.xpath("//*[local-name()='script' or local-name()='link' or local-name()='img']") == []
    assert xsl.xpath("//*[local-name()='import' or local-name()='include']") == []
    assert "url(" not in source and "@import" not in source and "document(" not in source
    assert xsl.getroot().get("version") == "1.0"


# --------------------------------------------------------------------------- discovery, imports, speed


def test_discovery_links_announce_each_format_escaped():
    links = discovery_links(FEEDS["weeknotes"])
    assert len(links) == 3
    for link, fmt in zip(links, FORMATS):
        element = etree.fromstring(link.replace(">", "/>", 1) if not link.endswith("/>") else link)
        assert element.get("type") == MEDIA_TYPES[fmt]
        assert element.get("href") == FEEDS["weeknotes"].self_urls[fmt]
        assert element.get("title").startswith("Hedgerow & Co")
        assert "&amp;" in link


def test_importing_the_model_or_rendering_json_does_not_import_feedgen():
    code = (
        "import sys; import publisher.feeds.model as m; assert 'feedgen' not in sys.modules;"
        "import publisher.feeds.jsonfeed; assert 'feedgen' not in sys.modules and 'lxml' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE.parent)


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_twenty_entries_is_quick(fmt, record_property):
    feed = _big_feed()
    render(feed, fmt)  # warm up imports
    started = time.perf_counter()
    for _ in range(5):
        render(feed, fmt)
    seconds = (time.perf_counter() - started) / 5
    record_property(f"render_{fmt}_20_entries_ms", round(seconds * 1000, 2))
    assert seconds < 1.0


def test_the_characters_no_feed_carries_are_exactly_these():
    """clean_text's pattern (written as what is allowed, for speed) removes exactly the characters XML 1.0
    forbids, the C1 controls, DEL, U+FFFD and the Unicode noncharacters: checked over every code point."""
    from publisher.feeds import model

    def unwanted(code: int) -> bool:
        return (code < 0x20 and code not in (0x09, 0x0A, 0x0D)) or 0x7F <= code <= 0x9F \
            or 0xFDD0 <= code <= 0xFDEF or code == 0xFFFD or (code & 0xFFFE) == 0xFFFE or 0xD800 <= code <= 0xDFFF
    text = "".join(map(chr, range(0x110000)))
    kept = model.clean_text(text)
    assert kept == "".join(chr(code) for code in range(0x110000) if not unwanted(code))
