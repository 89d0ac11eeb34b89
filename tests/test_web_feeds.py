"""The feeds folder served by the web service: types, validators, 304s, HEAD, and nothing outside it."""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import os
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.web.feeds import content_type, not_modified, prefers_html, routes

from .test_web_hooks import make_site, serve  # noqa: F401  (serve is a fixture)

ATOM = b'<?xml version="1.0" encoding="utf-8"?>\n<?xml-stylesheet type="text/xsl" href="feed.xsl"?>\n' \
       b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Example</title></feed>\n'
RSS = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Example</title></channel></rss>\n'
JSON = b'{"version": "https://jsonfeed.org/version/1.1", "title": "Example", "items": []}\n'
XSL = b'<?xml version="1.0"?>\n<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>\n'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
MTIME = 1_709_900_000  # 2024-03-08


def write(path: Path, data: bytes, mtime: int = MTIME) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def feeds_site(tmp_path):
    site = make_site(tmp_path / "site", feeds_url="http://example.com/feeds/")
    out = site.config.output_dir
    write(out / "atom.xml", ATOM)
    write(out / "rss.xml", RSS)
    write(out / "feed.json", JSON)
    write(out / "feed.xsl", XSL)
    write(out / "kinds" / "blog" / "atom.xml", ATOM.replace(b"Example", b"Blog"))
    write(out / "digests" / "weekly" / "3.html", b"<!DOCTYPE html><html><body>Digest</body></html>")
    write(out / ".atom.xml.x1.tmp", b"half a feed")
    write(site.root / "state" / "secret.txt", b"do not serve")
    (out / "escape").symlink_to(site.root / "state")
    yield site
    site.store.close()


@pytest.fixture
def client(feeds_site, serve):
    """A client at the server's root: the feeds have their own path, outside the pages' /newsletter/."""
    pages = serve(feeds_site)
    with httpx.Client(base_url=str(pages.base_url.copy_with(path="/")), timeout=10) as root:
        yield root


@pytest.mark.parametrize(("path", "expected", "data"), [
    ("feeds/atom.xml", "application/atom+xml; charset=utf-8", ATOM),
    ("feeds/rss.xml", "application/rss+xml; charset=utf-8", RSS),
    ("feeds/feed.json", "application/feed+json; charset=utf-8", JSON),
    ("feeds/feed.xsl", "text/xsl; charset=utf-8", XSL),
    ("feeds/kinds/blog/atom.xml", "application/atom+xml; charset=utf-8", ATOM.replace(b"Example", b"Blog")),
    ("feeds/digests/weekly/3.html", "text/html; charset=utf-8", b"<!DOCTYPE html><html><body>Digest</body></html>"),
])
def test_each_file_has_its_content_type_etag_and_last_modified(client, path, expected, data):
    response = client.get(path, headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.headers["content-type"] == expected
    assert response.content == data
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()[:32]}"'  # strong: no W/
    assert response.headers["last-modified"] == email.utils.formatdate(MTIME, usegmt=True)
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_browser_gets_atom_and_rss_as_xml_so_the_stylesheet_applies(client):
    reader = client.get("feeds/atom.xml", headers={"Accept": "application/atom+xml, application/xml;q=0.9"})
    browser = client.get("feeds/atom.xml", headers={"Accept": BROWSER})
    rss = client.get("feeds/rss.xml", headers={"Accept": BROWSER})
    assert reader.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert browser.headers["content-type"] == rss.headers["content-type"] == "application/xml; charset=utf-8"
    assert browser.content == reader.content
    assert browser.headers["etag"] != reader.headers["etag"]  # two representations, two validators
    assert browser.headers["vary"] == reader.headers["vary"] == "Accept"
    # the XSLT view may use the stylesheet's inline CSS, and still no script
    assert "style-src 'unsafe-inline'" in browser.headers["content-security-policy"]
    assert "unsafe-inline" not in reader.headers["content-security-policy"]
    policy = dict(part.strip().split(" ", 1) for part in browser.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"  # Chromium loads the XSLT under script-src; inline script stays blocked
    json_feed = client.get("feeds/feed.json", headers={"Accept": BROWSER})
    assert json_feed.headers["content-type"] == "application/feed+json; charset=utf-8"


def test_if_none_match_answers_304_without_a_body(client):
    etag = client.get("feeds/atom.xml").headers["etag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get("feeds/atom.xml", headers={"If-None-Match": value})
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert client.get("feeds/atom.xml", headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since_answers_304_unless_the_file_is_newer(client):
    same = email.utils.formatdate(MTIME, usegmt=True)
    before = email.utils.formatdate(MTIME - 1, usegmt=True)
    assert client.get("feeds/rss.xml", headers={"If-Modified-Since": same}).status_code == 304
    assert client.get("feeds/rss.xml", headers={"If-Modified-Since": before}).status_code == 200
    assert client.get("feeds/rss.xml", headers={"If-Modified-Since": "yesterday"}).status_code == 200
    # If-None-Match decides when both are sent
    assert client.get("feeds/rss.xml", headers={"If-Modified-Since": same,
                                                "If-None-Match": '"stale"'}).status_code == 200


def test_a_rewritten_feed_gets_a_new_etag(feeds_site, client):
    first = client.get("feeds/atom.xml")
    write(feeds_site.config.output_dir / "atom.xml", ATOM.replace(b"Example", b"Changed"), MTIME + 60)
    second = client.get("feeds/atom.xml", headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and b"Changed" in second.content
    assert second.headers["etag"] != first.headers["etag"]
    assert second.headers["last-modified"] == email.utils.formatdate(MTIME + 60, usegmt=True)


def test_head_sends_the_headers_and_no_body(client):
    get = client.get("feeds/feed.json")
    head = client.head("feeds/feed.json")
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "etag", "last-modified", "content-length"):
        assert head.headers[name] == get.headers[name]
    assert head.headers["content-length"] == str(len(JSON))


def test_only_get_and_head(client):
    assert client.post("feeds/atom.xml", content=b"x").status_code == 405


def raw_get(base_url: str, path: str) -> int:
    """GET exactly ``path`` (no client-side normalising of dot segments)."""
    host, port = base_url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.parametrize("path", [
    "/feeds/../state/secret.txt",
    "/feeds/../../state/secret.txt",
    "/feeds/%2e%2e/state/secret.txt",
    "/feeds/..%2fstate%2fsecret.txt",
    "/feeds/kinds/../../state/secret.txt",
    "/feeds/%2e%2e%2f%2e%2e%2fstate%2fsecret.txt",
    "/feeds/..%5cstate%5csecret.txt",
    "/feeds//etc/passwd",
    "/feeds/%2fetc%2fpasswd",
    "/feeds/atom.xml%00.json",
    "/feeds/escape/secret.txt",
    "/feeds/.atom.xml.x1.tmp",
    "/feeds/kinds",
    "/feeds/kinds/",
    "/feeds/",
    "/feeds/missing.xml",
])
def test_nothing_outside_the_folder_and_no_listings(client, path):
    assert raw_get(str(client.base_url), "/feeds/kinds/blog/atom.xml") == 200  # the same route serves files
    status = raw_get(str(client.base_url), path)
    assert status in (400, 404), path


def test_the_feeds_come_with_the_services_security_headers(client):
    response = client.get("feeds/atom.xml")
    assert "content-security-policy" in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


# -- the parts, without a server --------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_feeds_under_the_pages_base_path_work_when_mounted_before_it(tmp_path):
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.responses import PlainTextResponse
    from starlette.testclient import TestClient

    site = make_site(tmp_path)  # feeds at /newsletter/feeds/, pages at /newsletter/
    write(site.config.output_dir / "atom.xml", ATOM)
    feeds = routes(SimpleNamespace(config=site.config))
    assert [route.path for route in feeds] == ["/newsletter/feeds/{path:path}"]
    pages = Mount("/newsletter", routes=[Route("/", lambda request: PlainTextResponse("index"))])
    with TestClient(Starlette(routes=[*feeds, pages])) as test:
        assert test.get("/newsletter/feeds/atom.xml").headers["content-type"] == "application/atom+xml; charset=utf-8"
        assert test.get("/newsletter/").text == "index"
    site.store.close()


def test_feeds_under_the_pages_base_path_through_the_service(tmp_path, serve):
    site = make_site(tmp_path)
    write(site.config.output_dir / "atom.xml", ATOM)
    response = serve(site).get("feeds/atom.xml")
    site.store.close()
    assert response.status_code == 200


@pytest.mark.parametrize(("accept", "html"), [
    (BROWSER, True),
    ("text/html", True),
    ("application/atom+xml", False),
    ("application/rss+xml, application/xml;q=0.9, */*;q=0.1", False),
    ("*/*", False),
    ("", False),
    ("application/xml;q=0.5, text/html;q=0.9", True),
    ("text/html;q=0.1, application/atom+xml", False),
    ("text/html;q=bogus, application/atom+xml;q=0.5", False),
])
def test_prefers_html(accept, html):
    assert prefers_html(accept) is html


@given(st.text())
def test_prefers_html_never_fails(accept):
    assert prefers_html(accept) in (True, False)


@given(st.lists(st.tuples(st.sampled_from(["text/html", "application/atom+xml", "*/*", "application/xml"]),
                          st.integers(0, 10)), min_size=1, max_size=5))
def test_prefers_html_picks_the_first_of_the_highest_q(items):
    accept = ", ".join(f"{media};q={q / 10}" for media, q in items)
    best = max(q for _, q in items)
    first = next(media for media, q in items if q == best)
    assert prefers_html(accept) is (first == "text/html")


@given(st.dictionaries(st.sampled_from(["if-none-match", "if-modified-since"]), st.text(max_size=60)))
def test_conditional_headers_never_fail(headers):
    assert not_modified(headers, '"abc"', MTIME) in (True, False)


def test_content_type_sniffs_other_xml_files():
    assert content_type("other.xml", ATOM) == "application/atom+xml; charset=utf-8"
    assert content_type("other.xml", RSS) == "application/rss+xml; charset=utf-8"
    assert content_type("sitemap.xml", b"<urlset/>") == "application/xml; charset=utf-8"
    assert content_type("data.json", b"{}") == "application/json"
    assert content_type("notes.txt", b"") == "text/plain; charset=utf-8"
    assert content_type("blob", b"") == "application/octet-stream"
