"""The digest archive pages, over real HTTP to the web service."""

from __future__ import annotations

from datetime import timedelta

import html5lib
import pytest

from publisher.digest.archive import write_web_copy

from .test_web_hooks import NOW, make_site, serve  # noqa: F401  (serve is a fixture)

EMAIL = ('<!DOCTYPE html><html><head><title>Weekly</title><style>.post{color:#111}</style></head>'
         '<body class="root"><p class="post">Hello @@PUBLISHER:name@@, two new posts.</p>'
         '<a href="@@PUBLISHER:unsubscribe_url@@">Unsubscribe</a></body></html>')


@pytest.fixture
def archive_site(tmp_path):
    site = make_site(tmp_path)
    site.ids = {
        "old": site.digest(when=NOW - timedelta(days=70), subject="Weekly: the old one"),
        "sending": site.digest(when=NOW - timedelta(days=7), status="sending", subject="Weekly: going out"),
        "new": site.digest(when=NOW, subject="Weekly: <b>bold</b> & new", html=EMAIL),
        "composed": site.digest(when=NOW + timedelta(days=7), status="composed", subject="Weekly: not sent"),
        "links": site.digest(list_name="links", when=NOW, subject="Links: one"),
    }
    for key in ("old", "sending", "new", "composed"):
        write_web_copy(site.config, "weekly", site.ids[key], EMAIL.replace("two new posts", f"issue {key}"))
    yield site
    site.store.close()


def parse(text: str):
    return html5lib.parse(text, namespaceHTMLElements=False)


def test_the_index_lists_every_list_with_what_it_sent(archive_site, serve):
    client = serve(archive_site)
    response = client.get("archive/")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    tree = parse(response.text)
    weekly = tree.find(".//li[@id='archive-weekly']")
    links = tree.find(".//li[@id='archive-links']")
    assert weekly.find(".//h2/a").get("href") == "/newsletter/archive/weekly/"
    assert "3 digests sent, the latest on 8 March 2024" in "".join(weekly.itertext())
    assert "1 digest sent" in "".join(links.itertext())
    assert client.get("archive").status_code == 200  # with or without the slash


def test_a_lists_page_shows_sent_digests_newest_first(archive_site, serve):
    ids = archive_site.ids
    client = serve(archive_site)
    response = client.get("archive/weekly/")
    assert response.status_code == 200
    tree = parse(response.text)
    items = tree.findall(".//ol[@class='archive-issues']/li")
    assert [item.get("id") for item in items] == [f"issue-{ids[k]}" for k in ("new", "sending", "old")]
    first = items[0]
    assert first.find("time").get("datetime") == "2024-03-08" and first.find("time").text == "8 March 2024"
    assert first.find("a").get("href") == f"/newsletter/archive/weekly/{ids['new']}"
    assert first.find("a").text == "Weekly: <b>bold</b> & new"  # shown as text, never as markup
    assert "<b>bold</b>" not in response.text
    assert [h.text for h in tree.findall(".//section/h2")] == ["2024", "2023"]  # the old one is from December
    assert "not sent" not in response.text
    assert client.get("archive/weekly").status_code == 200


def test_a_digest_page_is_the_web_copy_with_the_archive_bar(archive_site, serve):
    ids = archive_site.ids
    client = serve(archive_site)
    response = client.get(f"archive/weekly/{ids['sending']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]  # an email is styled inline; it never runs a script
    assert "style-src 'unsafe-inline'" in policy and "script-src" not in policy and "default-src 'none'" in policy
    text = response.text
    assert "issue sending" in text and "@@PUBLISHER" not in text
    assert text.index('<body class="root">') < text.index('class="pa-bar"') < text.index('class="post"')
    bar = parse(text).find(".//nav[@class='pa-bar']")
    hrefs = {a.text: a.get("href") for a in bar.iter("a")}
    assert hrefs["Newer"] == f"/newsletter/archive/weekly/{ids['new']}"
    assert hrefs["Older"] == f"/newsletter/archive/weekly/{ids['old']}"
    assert hrefs["All lists"] == "/newsletter/archive/"
    assert hrefs["Subscribe"] == "/newsletter/subscribe/weekly"
    assert "Newer" not in {a.text for a in parse(client.get(f"archive/weekly/{ids['new']}").text).iter("a")}


def test_a_missing_web_copy_is_rebuilt_from_the_stored_digest(archive_site, serve):
    from publisher.digest.archive import web_path

    ids = archive_site.ids
    web_path(archive_site.config, "weekly", ids["new"]).unlink()
    response = serve(archive_site).get(f"archive/weekly/{ids['new']}")
    assert response.status_code == 200
    assert "Hello , two new posts." in response.text and "@@PUBLISHER" not in response.text
    assert 'href="http://example.com/newsletter/unsubscribe"' in response.text
    assert 'class="pa-bar"' in response.text


@pytest.mark.parametrize("path", ["archive/nosuchlist/", "archive/nosuchlist/1", "archive/weekly/999",
                                  "archive/weekly/{composed}", "archive/weekly/{links}", "archive/links/{new}",
                                  "archive/weekly/abc"])
def test_what_is_not_in_the_archive_is_404(archive_site, serve, path):
    client = serve(archive_site)
    response = client.get(path.format(**archive_site.ids))
    assert response.status_code == 404
    assert "not sent" not in response.text


def test_an_empty_list_says_so(tmp_path, serve):
    site = make_site(tmp_path)
    response = serve(site).get("archive/links/")
    site.store.close()
    assert response.status_code == 200 and "No digest has been sent" in response.text


def test_insert_bar_without_a_body_tag_puts_the_bar_first():
    from publisher.web.archive import insert_bar

    assert insert_bar(b"<p>x</p>", b"<nav/>") == b"<nav/><p>x</p>"
    assert insert_bar(b"<HTML><BODY bgcolor=x><p>x</p>", b"<nav/>") == b"<HTML><BODY bgcolor=x>\n<nav/>\n<p>x</p>"
