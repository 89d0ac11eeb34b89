"""Composing digests: golden HTML and text, the letter, the web copy, previews, templates, the 102 KB limit."""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timedelta

import html5lib
import pytest

from publisher.digest.compose import HTML_LIMIT, size
from publisher.errors import DigestError
from publisher.mail.letter import Recipient

from .test_digest_site import COMPOSE_AT, DIGEST_FIXTURES, SLOT, UTC, site, snip  # noqa: F401  (site is a fixture)

EXPECTED = DIGEST_FIXTURES / "expected"
REGEN = os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1"
XHTML = "{http://www.w3.org/1999/xhtml}"
RECIPIENT = Recipient(delivery_id=7, subscriber_id=3, email="reader+1@example.com", name="Rea <Der>",
                      message_id="<d1.s3@digest.example.net>",
                      unsubscribe_url="https://digest.example.net/newsletter/unsubscribe/TOKEN?x=1&y=2")


def golden(name: str, produced: str) -> None:
    path = EXPECTED / name
    if REGEN:
        path.write_text(produced, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with PUBLISHER_REGEN_GOLDEN=1 to create it"
    assert produced == path.read_text(encoding="utf-8"), f"{name} differs from its golden file (regenerate: " \
                                                         "PUBLISHER_REGEN_GOLDEN=1, then review the diff)"


def parse(html: str):
    parser = html5lib.HTMLParser(strict=False)
    document = parser.parse(html)
    return parser, document


# -- golden output ------------------------------------------------------------


def test_the_digest_html_matches_the_golden_file(site):
    golden("weekly.html", site.compose().letter.html)


def test_the_digest_text_matches_the_golden_file(site):
    golden("weekly.txt", site.compose().letter.text)


def test_the_web_copy_matches_the_golden_file(site):
    golden("weekly-web.html", site.compose().web_copy.read_text(encoding="utf-8"))


# -- the HTML -----------------------------------------------------------------


def test_the_html_parses_cleanly_and_every_link_is_absolute(site):
    html = site.compose().letter.html_for(RECIPIENT)
    parser, document = parse(html)
    assert parser.errors == []
    hrefs = [a.get("href") for a in document.iter(f"{XHTML}a")]
    assert len(hrefs) >= 10
    assert all(re.match(r"(https://|mailto:)", href) for href in hrefs), hrefs
    assert RECIPIENT.unsubscribe_url in hrefs
    sources = [img.get("src") for img in document.iter(f"{XHTML}img")]
    assert sources and all(src.startswith("https://digest.example.net/") for src in sources)


def test_the_html_has_the_parts_a_newsletter_needs(site):
    composed = site.compose()
    html = composed.letter.html
    _, document = parse(html)
    head = document.find(f"{XHTML}head")
    metas = {meta.get("name"): meta.get("content") for meta in head.iter(f"{XHTML}meta") if meta.get("name")}
    assert metas["color-scheme"] == "light dark" and metas["viewport"].startswith("width=device-width")
    style = "".join(node.text or "" for node in head.iter(f"{XHTML}style"))
    assert "@media only screen and (max-width: 620px)" in style and "prefers-color-scheme: dark" in style
    preheader = next(div for div in document.iter(f"{XHTML}div") if div.get("class") == "preheader")
    assert "display: none" in preheader.get("style") and preheader.text.startswith("Week 10 · Tools")
    browser = [a for a in document.iter(f"{XHTML}a") if a.text == "View this email in your browser"]
    assert [a.get("href") for a in browser] == [composed.web_url]
    unsubscribe = [a for a in document.iter(f"{XHTML}a") if a.text == "Unsubscribe"]
    assert [a.get("href") for a in unsubscribe] == ["@@PUBLISHER:unsubscribe_url@@"]


def test_css_is_inlined_with_explicit_colours(site):
    _, document = parse(site.compose().letter.html)
    cells = [td for td in document.iter(f"{XHTML}td") if td.get("class") == "post"]
    assert len(cells) == 3
    for cell in cells:
        assert "background-color: #ffffff" in cell.get("style") and "color: #1f2328" in cell.get("style")
    links = [a for a in cells[0].iter(f"{XHTML}a") if a.text == "bench"]
    assert "color: #0b5cad" in links[0].get("style")


def test_post_bodies_are_not_templates_and_titles_are_escaped(site):
    composed = site.compose()
    html, text = composed.letter.html, composed.letter.text
    assert "Tools &amp; &lt;b&gt;tricks&lt;/b&gt; for {{ templates }}" in html
    assert "<b>tricks</b>" not in html
    assert "{{ recipient.unsubscribe_url }} {% for x in y %}" in html
    assert re.search(r"<code[^>]*>{{ recipient.email }}</code>", html)
    assert "Tools & <b>tricks</b> for {{ templates }}\n-----" in text
    assert "{{ recipient.unsubscribe_url\n}} {% for x in y %}" in text


def test_a_post_quoting_a_placeholder_never_receives_the_recipients_values(site):
    site.write("blog/sneaky.snip.markdown", snip("Your address is @@PUBLISHER:email@@.", "2024-03-08 09:00:00 +00:00",
                                                 "Hello @@PUBLISHER:name@@"))
    site.build()
    letter = site.compose().letter
    html, text = letter.html_for(RECIPIENT), letter.text_for(RECIPIENT)
    assert html.count("reader+1@example.com") == 1 and text.count("reader+1@example.com") == 1  # the footer's
    assert "Rea &lt;Der&gt;" not in html and "Rea <Der>" not in text


def test_a_heading_that_repeats_the_title_is_shown_once(site):
    site.write("blog/headed.snip.markdown", "# Fish &amp; chips\n\nFriday lunch.\n\n:created_at: 2024-03-08 09:00:00 +00:00\n"
                                            ":kind: blog\n")
    site.build()
    composed = site.compose()
    assert composed.posts[0].title == "Fish & chips"
    html, text = composed.letter.html, composed.letter.text
    assert html.count("Fish &amp; chips") == 2  # the preheader and the post's own heading, not the body's
    assert "Fish & chips\n------------\n" in text and "# Fish & chips" not in text


def test_the_text_part_lists_links_by_number(site):
    text = site.compose().letter.text
    assert "We finished the bench [1] and started" in text
    assert "[1] https://digest.example.net/projects/bench\n[2] https://digest.example.net/members\n" in text
    assert "read the bench notes [1]" in text  # one URL, one number
    assert "[5] https://digest.example.net/visit" in text  # numbers run through the digest
    assert "<p>" not in text and "&amp;" not in text


# -- the letter, the row, the web copy -------------------------------------------------


def test_the_letter_carries_the_lists_headers(site):
    composed = site.compose()
    letter = composed.letter
    assert letter.subject == "Fixture Weekly: 3 new posts"
    assert letter.list_id == "Fixture Weekly <weekly.digest.example.net>"
    assert (letter.from_address, letter.from_name, letter.reply_to) == (
        "news@digest.example.net", "Fixture Co-op", "office@digest.example.net")
    assert letter.unsubscribe_mailto == "unsubscribe@digest.example.net"
    assert letter.date == COMPOSE_AT and letter.digest_id == composed.digest_id == 1
    assert site.composer().letter(composed.digest_id) == letter


def test_the_row_is_stored_with_its_content(site):
    composed = site.compose()
    row = site.digest_rows()[0]
    assert (row.subject, row.html, row.text) == (composed.letter.subject, composed.letter.html, composed.letter.text)
    assert row.summaries_only is False and row.recipients == 0


def test_the_web_copy_is_written_beside_the_feeds_with_neutral_values(site):
    composed = site.compose()
    assert composed.web_copy == site.root / "out" / "digests" / "weekly" / "1.html"
    assert composed.web_url == "https://digest.example.net/feeds/digests/weekly/1.html"
    page = composed.web_copy.read_text(encoding="utf-8")
    assert "@@PUBLISHER:" not in page
    assert 'href="https://digest.example.net/newsletter/unsubscribe"' in page
    assert "Sent to you, a subscriber to Fixture Weekly." in page


def test_a_missing_web_copy_is_written_again_when_the_digest_is_asked_for(site):
    first = site.compose()
    first.web_copy.unlink()
    again = site.composer().compose("weekly", SLOT)
    assert again.web_copy.read_text(encoding="utf-8") == site.compose().web_copy.read_text(encoding="utf-8")


def test_a_preview_stores_and_writes_nothing(site):
    site.clock.set(SLOT - timedelta(minutes=10))
    composed = site.composer().preview("weekly")
    assert composed.digest_id is None and composed.web_copy is None and composed.web_url is None
    assert composed.letter.digest_id is None
    assert [post.title for post in composed.posts][:1] == ["Week 10"]
    assert "View this email in your browser" not in composed.letter.html
    assert site.digest_count() == 0 and not (site.root / "out" / "digests").exists()


def test_a_preview_with_nothing_new_is_none(site):
    site.compose()
    site.clock.set(COMPOSE_AT + timedelta(hours=1))
    assert site.composer().preview("weekly") is None


def test_the_subject_template_makes_one_line(site):
    site.write("blog/two-lines.md", '---\ntitle: "Line one\\nline <two>\\tend"\ndate: 2024-03-08T10:00:00+00:00\n'
                                     'author: ana-silva\nkind: blog\n---\nBody.\n')
    site.build()
    composed = site.compose("ana", slot=datetime(2024, 3, 9, 8, 0, tzinfo=UTC))
    assert composed.letter.subject == "1 from Ana's notes: Line one line <two> end"


# -- templates ------------------------------------------------------------------


def test_a_lists_template_folder_overrides_the_html(site):
    folder = site.root / "custom-templates"
    folder.mkdir()
    (folder / "digest.html.j2").write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body><h1>Custom {{ list.title }}</h1>"
        "{% for post in posts %}<p>{{ post.title }}</p>{% endfor %}"
        "<a href=\"{{ recipient.unsubscribe_url }}\">bye</a></body></html>")
    site.configure('[lists.custom]\ntitle = "Custom & Co"\nschedule = "0 16 * * fri"\n'
                   'from_address = "c@digest.example.net"\ntemplates = "custom-templates"\n')
    composed = site.compose("custom")
    assert "<h1>Custom Custom &amp; Co</h1>" in composed.letter.html
    assert "<p>Tools &amp; &lt;b&gt;tricks&lt;/b&gt; for {{ templates }}</p>" in composed.letter.html
    assert composed.letter.text.startswith("Custom & Co\n===========\n")  # the built-in text template


def test_an_undefined_variable_is_an_error_naming_the_template_and_line(site):
    folder = site.root / "custom-templates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text("{{ list.title }}\n{% for post in posts %}\n{{ post.tittle }}\n{% endfor %}\n")
    site.configure('[lists.custom]\ntitle = "Custom"\nschedule = "0 16 * * fri"\n'
                   'from_address = "c@digest.example.net"\ntemplates = "custom-templates"\n')
    with pytest.raises(DigestError) as caught:
        site.compose("custom")
    message = str(caught.value)
    assert message.startswith(f"list custom: {folder / 'digest.txt.j2'} line 3: ")
    assert "tittle" in message and "\n" not in message
    assert site.digest_count() == 0 and not (site.root / "out" / "digests").exists()


def test_a_template_syntax_error_names_the_file(site):
    folder = site.root / "custom-templates"
    folder.mkdir()
    (folder / "digest.html.j2").write_text("<p>\n{% for post in posts %}\n")
    site.configure('[lists.custom]\ntitle = "Custom"\nschedule = "0 16 * * fri"\n'
                   'from_address = "c@digest.example.net"\ntemplates = "custom-templates"\n')
    with pytest.raises(DigestError, match=r"digest\.html\.j2 line \d+: .*endfor"):
        site.compose("custom")


def test_a_bad_subject_template_names_the_setting(site):
    site.configure('[lists.custom]\ntitle = "Custom"\nschedule = "0 16 * * fri"\n'
                   'from_address = "c@digest.example.net"\nsubject = "{{ list.titel }}"\n')
    with pytest.raises(DigestError, match=r"^list custom: lists\.custom\.subject line 1: .*titel"):
        site.compose("custom")


def test_unknown_lists_and_digests_are_digest_errors(site):
    with pytest.raises(DigestError, match="list nope: no such list .*known: ana, short, weekly"):
        site.compose("nope")
    with pytest.raises(DigestError, match="digest 99 does not exist"):
        site.composer().letter(99)


# -- the 102 KB limit ---------------------------------------------------------------


def _long_posts(site, count: int, paragraphs: int, words: int) -> None:
    sentence = "The co-op's long report goes on about shelves, benches and tea. "
    for n in range(count):
        body = "\n\n".join(f"Part {p} of post {n}. " + sentence * words for p in range(paragraphs))
        site.write(f"blog/long-{n:02}.snip.markdown", snip(body, f"2024-03-08 {n // 60:02}:{n % 60:02}:00 +00:00",
                                                           f"Long post {n}"))
    site.build()


def test_full_posts_over_the_limit_fall_back_to_summaries(site, caplog):
    _long_posts(site, count=17, paragraphs=12, words=12)  # ~9 KB each: 17 + week-10, tools, open-day = 20 posts
    with caplog.at_level(logging.WARNING, logger="publisher.digest"):
        composed = site.compose()
    assert composed.summaries_only and site.digest_rows()[0].summaries_only
    assert len(composed.posts) == 20
    assert size(composed.letter.html) <= HTML_LIMIT
    assert composed.letter.html.count("Read more →") == 20
    assert "Part 1 of post 3" not in composed.letter.html and "Part 0 of post 3" in composed.letter.html
    assert "Read more: https://digest.example.net/long-03" in composed.letter.text
    assert "Part 1 of post 3" not in composed.letter.text
    assert re.search(r"list weekly: the full posts make \d+ KB of HTML .* sending summaries with read-more links",
                     caplog.text)


def test_summaries_over_the_limit_fall_back_to_fewer_posts(site, caplog):
    _long_posts(site, count=17, paragraphs=1, words=150)  # one long paragraph each: the summary is the whole post
    with caplog.at_level(logging.WARNING, logger="publisher.digest"):
        composed = site.compose()
    shown = len(composed.posts)
    assert 1 <= shown < 20 and composed.summaries_only
    assert size(composed.letter.html) <= HTML_LIMIT
    assert f"And {20 - shown} more new posts" in composed.letter.html
    assert f"And {20 - shown} more new posts on the site" in composed.letter.text
    assert f"sending summaries of {shown} of the 20 posts" in caplog.text
    assert site.names([post.id for post in composed.posts])[0] == "long-16"  # the newest are kept


def test_the_limit_counts_placeholders_at_their_longest(site):
    html = site.compose().letter.html
    assert size(html) > len(html.encode()) + 400  # the footer's email and unsubscribe URL, at worst
