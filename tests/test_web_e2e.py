"""End to end in headless Chromium: sign up on the form, confirm from the mail, get a digest, leave, get none.

Everything real and local: the subscriber pages on uvicorn (``start_in_thread``,
127.0.0.1), the list's ``smtp`` provider talking to an aiosmtpd server on
127.0.0.1, the builder publishing snip posts into SQLite, the digest slots run
by :class:`publisher.newsletter.Newsletter`, and Debian's Chromium driven by
Playwright clicking through the pages (:mod:`tests.browser`; skipped only when
``/usr/bin/chromium`` or ``playwright`` is missing).  One FrozenClock is shared
by the web service (tokens, rate limits), the builder and the digests, so the
slots fall where the test puts them.

Ada and Bob sign up in their own browsers and confirm from the link in their
mail; Cy is already subscribed and shows that the later digest really goes
out.  After the first digest Ada leaves through RFC 8058 one-click (an HTTP
POST from the "mail client", no cookie, no page) and Bob through the page
behind the digest's Unsubscribe link (opening it changes nothing; its button
does).  The second digest reaches Cy only.
"""

from __future__ import annotations

import email.policy
import re
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.build import Builder
from publisher.clock import FrozenClock
from publisher.config import Config, load_config
from publisher.errors import ConfigError
from publisher.newsletter import Newsletter, latest_slot
from publisher.state import Store
from publisher.subscribers import Subscribers
from publisher.web.server import ServerHandle, bind, start_in_thread
from tests.browser import Watch, chromium, require_browser
from tests.servers.smtp import SmtpServer

ENV = {"PUBLISHER_SECRET": "an-end-to-end-test-secret-0123456789abcdef"}
LIST = "weekly"
LIST_TITLE = "Weekly news"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday; the list goes out on Fridays at 16:00 UTC
CONFIG = """
[site]
title = "Harbour Co-op"
url = "https://harbour.example.org/"
timezone = "UTC"

[posts]
root = "posts"
folders = ["blog"]
kinds = ["blog"]

[feeds]
output = "out"

[state]
directory = "state"

[lists.weekly]
title = "{list_title}"
description = "What the co-op did this week."
schedule = "0 16 * * fri"
timezone = "UTC"
from_address = "news@harbour.example.org"
from_name = "Harbour Co-op"
provider = "local"

[providers.local]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
pool = 1
timeout = 10

[mail]
unsubscribe_mailto = "unsubscribe@harbour.example.org"

[web]
url = "http://127.0.0.1:{web_port}/newsletter/"
"""


def write_post(site: Path, name: str, title: str, created: str) -> None:
    """A snip post in posts/blog: a Markdown body, then the snip attributes."""
    body = f"# {title}\n\nThe {title.lower()} happened, and [here is more](/notes#{name}).\n\n"
    (site / "posts" / "blog" / f"{name}.snip.markdown").write_text(
        body + f":created_at: {created}\n:kind: blog\n", encoding="utf-8")


class World:
    """The site on disk, its SMTP server, the running web service, the clock and the digest runner."""

    def __init__(self, site: Path, smtp: SmtpServer) -> None:
        self.site = site
        self.smtp = smtp
        self.clock = FrozenClock(START)
        (site / "posts" / "blog").mkdir(parents=True)
        write_post(site, "last-year", "Old news from last year", "2025-06-06 10:00:00 +0000")
        self.config, self.handle = self._serve()
        try:
            self.builder = Builder(self.config, clock=self.clock)
            self.builder.build()
            self.store = Store(self.config.database_url, clock=self.clock)
        except BaseException:
            self.handle.stop()
            raise
        self.newsletter = Newsletter(self.config, self.store, clock=self.clock, environ=ENV)

    def _serve(self) -> tuple[Config, ServerHandle]:
        """Start the web service on a free port whose URL is its own ``web.url`` (retry if the port is taken)."""
        for _attempt in range(5):
            with bind("127.0.0.1", 0) as probe:
                port = probe.getsockname()[1]
            (self.site / "config.toml").write_text(
                CONFIG.format(list_title=LIST_TITLE, smtp_port=self.smtp.port, web_port=port), encoding="utf-8")
            config = load_config(self.site / "config.toml")
            try:
                return config, start_in_thread(config, clock=self.clock, environ=ENV, host="127.0.0.1", port=port)
            except ConfigError:
                continue
        raise AssertionError("no free port for the web service after 5 attempts")

    def close(self) -> None:
        self.handle.stop()
        self.builder.close()
        self.store.close()

    @property
    def base(self) -> str:
        return self.config.web_url  # == the server's own URL

    @property
    def origin(self) -> str:
        return self.base.split("/newsletter/")[0]

    # -- posts and digests -------------------------------------------------------------

    def publish(self, name: str, title: str, at: datetime) -> None:
        write_post(self.site, name, title, at.strftime("%Y-%m-%d %H:%M:%S +0000"))
        self.clock.set(at + timedelta(hours=1))  # first published an hour after it was written
        self.builder.build()

    def run_slot(self, at: datetime) -> Any:
        self.clock.set(at)
        slot = latest_slot(self.config.lists[LIST], self.clock.now())
        assert slot is not None and slot.hour == 16 and slot.weekday() == 4
        return self.newsletter.run_slot(LIST, slot)

    # -- what the database and the SMTP server hold ----------------------------------

    def status(self, address: str) -> str | None:
        for row in Subscribers(self.store, clock=self.clock).iter(LIST):
            if row.email == address:
                return row.status
        return None

    def mails(self, address: str, subject_has: str = "") -> list[EmailMessage]:
        parser = BytesParser(policy=email.policy.default)
        found = [parser.parsebytes(m.data) for m in self.smtp.received_by(address)]
        return [m for m in found if subject_has in str(m["Subject"])]


@pytest.fixture
def world(tmp_path: Path):
    require_browser()  # before starting anything
    with SmtpServer(tls="none") as smtp:
        w = World(tmp_path, smtp)
        try:
            yield w
        finally:
            w.close()


# -- steps ---------------------------------------------------------------------------------


def text_part(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "the mail has no text/plain part"
    return part.get_content()


def html_part(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None, "the mail has no text/html part"
    return part.get_content()


def link_in(text: str, base: str, path: str) -> str:
    """The one ``base + path + <token>`` link in a mail's text."""
    links = set(re.findall(re.escape(base + path) + r"[A-Za-z0-9_\-.=]+", text))
    assert len(links) == 1, f"expected one {path} link in the mail, found {sorted(links)}"
    return links.pop()


def list_unsubscribe_url(message: EmailMessage) -> str:
    urls = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    web = [u for u in urls if u.startswith(("https:", "http:"))]
    assert len(web) == 1 and any(u.startswith("mailto:") for u in urls), urls
    return web[0]


def stylesheet_rules(page: Any) -> list[int]:
    """How many rules each same-origin stylesheet of the page holds (0 or an error if it was blocked)."""
    return page.evaluate("() => [...document.styleSheets].map(s => { try { return s.cssRules.length } "
                         "catch (e) { return -1 } })")


def post_form(page: Any, button: str) -> Any:
    """Click a form's submit button; return the response to the POST (after the page has loaded)."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click(button)
    page.wait_for_load_state("load")
    return answer.value


def sign_up_in_browser(world: World, watch: Watch, address: str, name: str) -> None:
    """Subscribe form -> check-inbox page -> the confirmation mail -> its link -> the button -> confirmed."""
    page = watch.new_page()
    response = page.goto(world.base + f"subscribe/{LIST}")
    assert response.status == 200
    assert page.locator("h1").inner_text() == f"Subscribe to {LIST_TITLE}"
    assert all(count > 0 for count in stylesheet_rules(page)) and stylesheet_rules(page), "the stylesheet didn't load"
    csrf = [c for c in watch.cookies() if c["name"] == "publisher_csrf"]
    assert len(csrf) == 1 and csrf[0]["httpOnly"] and csrf[0]["path"] == "/newsletter/", watch.cookies()

    page.fill("#email", address)
    page.fill("#name", name)
    answer = post_form(page, "#subscribe")
    assert answer.status == 200 and answer.url == world.base + f"subscribe/{LIST}"
    assert page.locator("h1").inner_text() == "Check your inbox"
    assert LIST_TITLE in page.locator("main").inner_text()
    assert world.status(address) == "pending"

    (confirmation,) = world.mails(address)  # sent while the request was answered: no waiting
    assert confirmation["To"].addresses[0].addr_spec == address
    assert LIST_TITLE in str(confirmation["Subject"])
    confirm_link = link_in(text_part(confirmation), world.base, "confirm/")
    assert confirm_link in html_part(confirmation)

    response = page.goto(confirm_link)  # as if followed from the mail
    assert response.status == 200
    assert page.locator("h1").inner_text() == "Confirm your subscription"
    assert address in page.locator("main").inner_text()
    assert world.status(address) == "pending", "opening the confirmation link must not confirm (scanners GET it)"
    answer = post_form(page, "#confirm")
    assert answer.status == 200
    assert page.locator("h1").inner_text() == "You're subscribed"
    assert address in page.locator("main").inner_text() and LIST_TITLE in page.locator("main").inner_text()
    assert world.status(address) == "active"
    assert Subscribers(world.store).get(address).name == name
    page.close()


def one_click(url: str) -> httpx.Response:
    """What a mailbox provider sends for RFC 8058: a bare form POST, no cookie, no redirects followed."""
    return httpx.post(url, content=b"List-Unsubscribe=One-Click", timeout=10, follow_redirects=False,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})


def unsubscribe_in_browser(world: World, watch: Watch, digest: EmailMessage, address: str) -> None:
    """Show the digest in a fresh browser, follow its Unsubscribe link (changes nothing), click the button."""
    page = watch.new_page()
    page.set_content(html_part(digest))  # the mail as a webmail shows it
    link = page.get_by_role("link", name="Unsubscribe", exact=True)
    assert link.get_attribute("href") == list_unsubscribe_url(digest)
    with page.expect_navigation() as opened:
        link.click()
    assert opened.value.status == 200 and page.url == list_unsubscribe_url(digest)
    assert page.locator("h1").inner_text() == f"Unsubscribe from {LIST_TITLE}"
    assert f"Stop sending {LIST_TITLE} to {address}?" in page.locator("main").inner_text()
    assert world.status(address) == "active", "opening the unsubscribe page must not unsubscribe"

    answer = post_form(page, "#unsubscribe")
    assert answer.status == 200
    assert page.locator("h1").inner_text() == "You're unsubscribed"
    assert f"{address} won't receive {LIST_TITLE} any more" in page.locator("main").inner_text()
    assert world.status(address) == "unsubscribed"
    page.close()


# -- the test --------------------------------------------------------------------------------


def test_sign_up_confirm_digest_unsubscribe_then_no_digest(world: World) -> None:
    Subscribers(world.store, clock=world.clock).add("cy@example.net", name="Cy", lists=[LIST])
    with chromium() as browser:
        watches = {who: Watch.open(browser, world.origin) for who in ("ada", "bob", "bob-mail")}
        try:
            sign_up_in_browser(world, watches["ada"], "ada@example.org", "Ada Lovelace")
            sign_up_in_browser(world, watches["bob"], "bob@example.org", "Bob Marley")

            # Week 1: a post -> Friday's digest reaches all three.
            world.publish("harbour-wall", "The harbour wall is mended", datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc))
            first = world.run_slot(datetime(2026, 3, 6, 16, 0, 5, tzinfo=timezone.utc))
            assert first.digest_id is not None and first.report.sent == 3
            digests = {}
            for address in ("ada@example.org", "bob@example.org", "cy@example.net"):
                (digests[address],) = world.mails(address, LIST_TITLE + ":")
                text = text_part(digests[address])
                assert "The harbour wall is mended" in text and "Old news from last year" not in text
                assert digests[address]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                assert link_in(text, world.base, "unsubscribe/") == list_unsubscribe_url(digests[address])

            # Ada's mail client: RFC 8058 one-click, twice (idempotent); Bob: the page behind the link.
            ada_url = list_unsubscribe_url(digests["ada@example.org"])
            for _ in range(2):
                answer = one_click(ada_url)
                assert answer.status_code == 200, answer.text
                assert world.status("ada@example.org") == "unsubscribed"
            assert "set-cookie" not in answer.headers
            unsubscribe_in_browser(world, watches["bob-mail"], digests["bob@example.org"], "bob@example.org")

            # Week 2: another post -> the digest reaches Cy only.
            world.publish("new-crane", "A new crane on the quay", datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc))
            second = world.run_slot(datetime(2026, 3, 13, 16, 0, 5, tzinfo=timezone.utc))
            assert second.digest_id not in (None, first.digest_id) and second.report.sent == 1
            cy = world.mails("cy@example.net", LIST_TITLE + ":")
            assert len(cy) == 2 and "A new crane on the quay" in text_part(cy[1])
            assert "The harbour wall is mended" not in text_part(cy[1])
            for gone in ("ada@example.org", "bob@example.org"):
                assert len(world.mails(gone, LIST_TITLE + ":")) == 1, f"{gone} got a digest after unsubscribing"
                assert len(world.mails(gone)) == 2  # the confirmation and the first digest, nothing else

            for who, watch in watches.items():
                assert watch.problems == [], f"{who}'s browser: {watch.problems}"
            for who in ("ada", "bob"):  # only the service's pages were open there: nothing tried to leave 127.0.0.1
                assert watches[who].blocked == [], f"{who}'s browser tried to reach {watches[who].blocked}"
        finally:
            for watch in watches.values():
                watch.close()


def test_a_feed_opened_in_the_browser_shows_the_readable_page_from_its_stylesheet(world: World) -> None:
    """Served to a browser as XML under the CSP, the Atom feed is turned into a page by feed.xsl (not left blank)."""
    feed_url = f"{world.origin}/feeds/atom.xml"
    with chromium() as browser:
        page = browser.new_page()
        blocked: list[str] = []
        page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text
                and "feed.xsl" in msg.text else None)
        response = page.goto(feed_url)
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("application/xml")
        body = page.inner_text("body")
        page.close()
    assert not blocked, blocked
    assert "This is a web feed" in body and "Old news from last year" in body
