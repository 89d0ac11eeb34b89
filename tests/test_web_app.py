"""HTTP tests of the subscriber web service against a real uvicorn server on 127.0.0.1.

Each test runs the app with ``start_in_thread`` on a free port, SQLite in
``tmp_path``, the outbox provider (confirmation mails land as .eml files, read
back and followed) and a frozen clock shared by the tokens and the rate limits.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.subscribers import Subscribers
from publisher.tokens import unsubscribe_url
from publisher.web.mailer import preferences_url
from publisher.web.server import ServerHandle, start_in_thread

SECRET = {"PUBLISHER_SECRET": "a-test-secret-of-enough-length-0123456789"}
START = datetime(2026, 3, 6, 12, 0, tzinfo=timezone.utc)
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
CONFIG = """
[site]
title = "Coop <News>"
url = "https://coop.example.org/"

[posts]
root = "posts"

[lists.weekly]
title = "Weekly <b>news</b>"
description = "Everything new, on Fridays."
schedule = "0 16 * * fri"
from_address = "news@coop.example.org"
from_name = "Coop News"

[lists.monthly]
title = "Monthly round-up"
schedule = "0 9 1 * *"
from_address = "news@coop.example.org"

[web]
url = "{url}"
signups_per_address = {per_address}
signups_per_client = {per_client}
forwarded_allow_ips = {forwarded}
{extra}
"""


def write_config(root: Path, *, url: str = "http://127.0.0.1/newsletter/", per_address: int = 3,
                 per_client: int = 20, forwarded: str = "[]", extra: str = "") -> Path:
    (root / "posts").mkdir(exist_ok=True)
    path = root / "config.toml"
    path.write_text(CONFIG.format(url=url, per_address=per_address, per_client=per_client, forwarded=forwarded,
                                  extra=extra), encoding="utf-8")
    return path


class Site:
    """A running server, its client, and helpers to read the outbox and the database."""

    def __init__(self, root: Path, handle: ServerHandle, clock: FrozenClock) -> None:
        self.root = root
        self.handle = handle
        self.clock = clock
        self.client = httpx.Client(base_url=handle.url, timeout=10)
        self.seen: set[Path] = set()

    @property
    def ctx(self) -> Any:
        return self.handle.ctx

    @property
    def subscribers(self) -> Subscribers:
        return Subscribers(self.ctx.store, clock=self.clock)

    def fresh_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.handle.url, timeout=10)

    def path(self, url: str) -> str:
        """An absolute link from a mail or page, as a path relative to the server's base URL."""
        return urlsplit(url).path.removeprefix(self.ctx.base_path)

    # -- outbox --------------------------------------------------------------------

    def new_mails(self) -> list[email.message.EmailMessage]:
        files = sorted(set((self.root / "outbox").rglob("*.eml")) - self.seen)
        self.seen.update(files)
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files]

    def one_mail(self) -> email.message.EmailMessage:
        mails = self.new_mails()
        assert len(mails) == 1, f"expected one new mail, got {len(mails)}"
        return mails[0]

    # -- forms -----------------------------------------------------------------------

    def csrf(self, path: str, client: httpx.Client | None = None) -> str:
        response = (client or self.client).get(path)
        assert response.status_code == 200, response.text
        return csrf_of(response.text)

    def sign_up(self, address: str, name: str = "", list_name: str = "weekly", **headers: str) -> httpx.Response:
        token = self.csrf(f"subscribe/{list_name}")
        return self.client.post(f"subscribe/{list_name}", data={"csrf": token, "email": address, "name": name},
                                headers=headers)

    def confirm(self, mail: email.message.EmailMessage) -> httpx.Response:
        path = self.path(link(mail, "confirm/"))
        return self.client.post(path, data={"csrf": self.csrf(path)})

    # -- database ----------------------------------------------------------------------

    def status(self, address: str, list_name: str = "weekly") -> str | None:
        for row in self.subscribers.iter(list_name):
            if row.email == address:
                return row.status
        return None

    def add(self, address: str, status: str = "active", list_name: str = "weekly", name: str | None = None) -> Any:
        self.subscribers.add(address, name, [list_name], status="active" if status not in ("pending",) else status)
        row = self.subscribers.get(address)
        if status not in ("active", "pending"):
            self.subscribers.set_status(row.id, list_name, status)
        return row

    def unsubscribe_path(self, row: Any, list_name: str = "weekly") -> str:
        return self.path(unsubscribe_url(self.ctx.config, self.ctx.signer, row.id, row.secret, list_name))

    def preferences_path(self, row: Any) -> str:
        return self.path(preferences_url(self.ctx, row.id, row.secret))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def link(mail: email.message.EmailMessage, marker: str) -> str:
    text = mail.get_body(("plain",)).get_content()
    match = re.search(r"https?://\S*" + re.escape(marker) + r"[A-Za-z0-9_-]+", text)
    assert match, f"no {marker} link in:\n{text}"
    return match.group(0)


def start(root: Path, clock: FrozenClock, **config: Any) -> Site:
    handle = start_in_thread(load_config(write_config(root, **config)), clock=clock, environ=SECRET, port=0)
    return Site(root, handle, clock)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def site(tmp_path: Path, clock: FrozenClock) -> Iterator[Site]:
    running = start(tmp_path, clock)
    try:
        yield running
    finally:
        running.client.close()
        running.handle.stop()


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, f"{response.request.url}: {name}"
    assert "permissions-policy" in response.headers
    assert "strict-transport-security" not in response.headers  # the test site is http


# -- pages ---------------------------------------------------------------------------


def test_the_index_lists_every_list_with_escaped_titles_and_links_to_the_forms(site: Site) -> None:
    page = site.client.get("")
    assert page.status_code == 200
    assert "Weekly &lt;b&gt;news&lt;/b&gt;" in page.text and "<b>news</b>" not in page.text
    assert 'href="/newsletter/subscribe/weekly"' in page.text and "Monthly round-up" in page.text
    assert site.client.get("subscribe/weekly").status_code == 200
    assert site.client.get("subscribe/nope").status_code == 404


def test_the_stylesheet_is_served_from_its_versioned_url_and_cached(site: Site) -> None:
    page = site.client.get("subscribe/weekly")
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
    assert href.startswith("/newsletter/static/web.css?v=")
    css = site.client.get(href.removeprefix("/newsletter/"))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"] and "prefers-color-scheme: dark" in css.text
    assert site.client.get("static/../config.toml").status_code == 404
    assert site.client.get("static/secret.key").status_code == 404


def test_no_page_has_inline_script_or_style(site: Site) -> None:
    row = site.add("ann@example.org")
    for path in ["", "subscribe/weekly", "unsubscribe", site.unsubscribe_path(row), site.preferences_path(row),
                 "nothing-here"]:
        html = site.client.get(path).text
        assert "<script" not in html.lower() and " style=" not in html.lower() and "<style" not in html.lower()


# -- subscribe and confirm ---------------------------------------------------------------


def test_the_form_makes_a_pending_subscription_and_mails_a_link_whose_button_activates_it(site: Site) -> None:
    response = site.sign_up("Ann@Example.org", "Ann")
    assert response.status_code == 200 and 'id="check-inbox"' in response.text
    assert site.status("ann@example.org") == "pending"
    mail = site.one_mail()
    assert mail["To"].addresses[0].addr_spec == "ann@example.org"
    assert "Weekly <b>news</b>" in mail["Subject"] and mail["From"].addresses[0].addr_spec == "news@coop.example.org"
    confirm_link = link(mail, "confirm/")
    assert confirm_link.startswith("http://127.0.0.1/newsletter/confirm/")
    html = mail.get_body(("html",)).get_content()
    assert "Weekly &lt;b&gt;news&lt;/b&gt;" in html and "<b>news</b>" not in html
    page = site.client.get(site.path(confirm_link))
    assert page.status_code == 200 and 'id="confirm"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert site.status("ann@example.org") == "pending"  # GET changes nothing: link scanners follow GETs
    done = site.confirm(mail)
    assert done.status_code == 200 and 'id="confirmed"' in done.text
    assert site.status("ann@example.org") == "active"
    assert site.confirm(mail).status_code == 200  # twice is harmless
    assert site.status("ann@example.org") == "active"


def test_an_expired_confirmation_link_shows_an_error_and_changes_nothing(site: Site, clock: FrozenClock) -> None:
    site.sign_up("ann@example.org")
    mail = site.one_mail()
    path = site.path(link(mail, "confirm/"))
    token = site.csrf(path)
    clock.advance(hours=48, seconds=1)
    assert site.client.get(path).status_code == 400
    response = site.client.post(path, data={"csrf": token})
    assert response.status_code == 400 and "expired" in response.text
    assert site.status("ann@example.org") == "pending"


def test_altered_forged_and_wrong_purpose_tokens_get_a_plain_400_and_change_nothing(site: Site) -> None:
    row = site.add("ann@example.org")
    good = site.unsubscribe_path(row).removeprefix("unsubscribe/")
    altered = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    forged = "AQ" + "A" * 60
    for token in (altered, forged, good[:-5], "x" * 2000):
        assert site.client.get(f"unsubscribe/{token}").status_code == 400
        csrf = site.csrf("subscribe/weekly")
        assert site.client.post(f"unsubscribe/{token}", data={"csrf": csrf}).status_code == 400
        one_click = site.fresh_client().post(f"unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 400 and one_click.headers["content-type"].startswith("text/plain")
        assert site.client.get(f"preferences/{token}").status_code == 400
        assert site.client.get(f"confirm/{token}").status_code == 400
    for purpose_path in (f"confirm/{good}", f"preferences/{good}"):  # an unsubscribe token is no other token
        assert site.client.get(purpose_path).status_code == 400
    assert site.status("ann@example.org") == "active"


def test_confirming_a_forgotten_subscriber_is_an_error(site: Site) -> None:
    site.sign_up("ann@example.org")
    mail = site.one_mail()
    path = site.path(link(mail, "confirm/"))
    csrf = site.csrf(path)
    from publisher.forget import forget

    forget(site.ctx.store, site.ctx.config, "ann@example.org")
    assert site.client.post(path, data={"csrf": csrf}).status_code == 400
    assert site.status("ann@example.org") is None


def test_no_response_tells_whether_an_address_is_subscribed(site: Site) -> None:
    site.add("old@example.org", "active")
    site.add("gone@example.org", "unsubscribed")
    pages = {address: site.sign_up(address) for address in ("new@example.org", "old@example.org",
                                                             "gone@example.org")}
    assert {p.status_code for p in pages.values()} == {200}
    assert len({p.text for p in pages.values()}) == 1
    api = [site.client.post("api/lists/weekly/subscribe", json={"email": a})
           for a in ("new2@example.org", "old@example.org", "gone@example.org")]
    assert {r.status_code for r in api} == {202} and len({r.content for r in api}) == 1
    subjects = sorted(mail["Subject"] for mail in site.new_mails())
    assert sum("already subscribed" in s for s in subjects) == 2  # old@, by form and by API
    assert sum(s.startswith("Confirm") for s in subjects) == 4


def test_a_stopped_address_comes_back_only_by_confirming(site: Site) -> None:
    for status in ("unsubscribed", "bounced", "complained"):
        address = f"{status}@example.org"
        site.add(address, status)
        site.sign_up(address)
        assert site.status(address) == status
        mail = site.one_mail()
        assert mail["Subject"].startswith("Confirm")
        assert site.confirm(mail).status_code == 200
        assert site.status(address) == "active"


def test_a_sign_up_does_not_rename_an_existing_subscriber(site: Site) -> None:
    site.add("ann@example.org", name="Ann")
    site.sign_up("ann@example.org", "Mallory was here", list_name="monthly")
    assert site.subscribers.get("ann@example.org").name == "Ann"
    mail = site.one_mail()
    assert "Mallory" not in mail.as_string()  # nothing the visitor typed but the address reaches the mail


def test_a_bad_address_redisplays_the_form_with_the_error_and_the_values_escaped(site: Site) -> None:
    response = site.sign_up("not an address <script>", "<script>alert(1)</script>")
    assert response.status_code == 400 and 'aria-invalid="true"' in response.text
    assert "<script>" not in response.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert site.new_mails() == []


def test_the_honeypot_gets_the_neutral_page_and_no_mail(site: Site) -> None:
    token = site.csrf("subscribe/weekly")
    response = site.client.post("subscribe/weekly", data={"csrf": token, "email": "bot@example.org",
                                                          "website": "http://spam.example"})
    assert response.status_code == 200 and 'id="check-inbox"' in response.text
    assert site.new_mails() == [] and site.status("bot@example.org") is None


def test_a_suppressed_address_gets_the_neutral_answer_and_no_mail(site: Site) -> None:
    from publisher.forget import forget

    forget(site.ctx.store, site.ctx.config, "gone@example.org")
    response = site.sign_up("gone@example.org")
    assert response.status_code == 200 and 'id="check-inbox"' in response.text
    assert site.new_mails() == [] and site.status("gone@example.org") is None


# -- the JSON API ------------------------------------------------------------------------


def test_the_json_api_accepts_a_sign_up_and_rejects_bad_requests(site: Site) -> None:
    ok = site.client.post("api/lists/weekly/subscribe", json={"email": "ann@example.org", "name": "Ann"})
    assert ok.status_code == 202 and ok.json()["status"] == "accepted"
    assert site.status("ann@example.org") == "pending" and site.subscribers.get("ann@example.org").name == "Ann"
    assert len(site.new_mails()) == 1
    assert site.client.post("api/lists/nope/subscribe", json={"email": "a@example.org"}).status_code == 404
    form = site.client.post("api/lists/weekly/subscribe", data={"email": "a@example.org"})
    assert form.status_code == 415  # a cross-site form can't post JSON without a CORS preflight
    for body in (b"{", b"[]", b'{"email": 5}', b'{"email": "nope"}', b'{"email": "a@example.org", "name": 3}'):
        response = site.client.post("api/lists/weekly/subscribe", content=body,
                                    headers={"content-type": "application/json"})
        assert response.status_code == 400 and "error" in response.json()
    assert site.new_mails() == []


# -- rate limits ---------------------------------------------------------------------------


def test_the_address_limit_stops_mail_but_not_the_neutral_answer(tmp_path: Path, clock: FrozenClock) -> None:
    site = start(tmp_path, clock, per_address=2)
    try:
        pages = [site.sign_up("ann@example.org") for _ in range(3)]
        assert [p.status_code for p in pages] == [200, 200, 200] and len({p.text for p in pages}) == 1
        assert len(site.new_mails()) == 2
        limited = site.client.post("api/lists/weekly/subscribe", json={"email": "ann@example.org"})
        assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 3600
        assert site.sign_up("bob@example.org").status_code == 200 and len(site.new_mails()) == 1
        clock.advance(hours=1)
        site.sign_up("ann@example.org")
        assert len(site.new_mails()) == 1
    finally:
        site.handle.stop()


def test_the_client_limit_counts_per_ip_and_trusts_forwarded_for_only_from_proxies(tmp_path: Path,
                                                                                     clock: FrozenClock) -> None:
    (tmp_path / "a").mkdir()
    untrusted = start(tmp_path / "a", clock, per_client=2)
    try:
        for n in range(3):
            untrusted.sign_up(f"u{n}@example.org", **{"X-Forwarded-For": f"203.0.113.{n}"})
        assert len(untrusted.new_mails()) == 2  # X-Forwarded-For ignored: all from 127.0.0.1
        api = untrusted.client.post("api/lists/weekly/subscribe", json={"email": "u9@example.org"})
        assert api.status_code == 429
    finally:
        untrusted.handle.stop()
    (tmp_path / "b").mkdir()
    proxied = start(tmp_path / "b", clock, per_client=2, forwarded='["127.0.0.1"]')
    try:
        for n in range(3):
            proxied.sign_up(f"p{n}@example.org", **{"X-Forwarded-For": f"203.0.113.{n}"})
        assert len(proxied.new_mails()) == 3
        for n in range(2):
            proxied.sign_up(f"q{n}@example.org", **{"X-Forwarded-For": "198.51.100.7"})
        proxied.sign_up("q9@example.org", **{"X-Forwarded-For": "198.51.100.7"})
        assert len(proxied.new_mails()) == 2
    finally:
        proxied.handle.stop()


# -- unsubscribe -------------------------------------------------------------------------------


def test_get_never_unsubscribes_and_the_button_does_at_once_and_again(site: Site) -> None:
    row = site.add("ann@example.org")
    path = site.unsubscribe_path(row)
    for _ in range(3):
        page = site.client.get(path)
        assert page.status_code == 200 and 'id="unsubscribe"' in page.text
        assert page.headers["cache-control"] == "no-store"
    assert site.status("ann@example.org") == "active"
    token = csrf_of(page.text)
    done = site.client.post(path, data={"csrf": token})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.text
    assert site.status("ann@example.org") == "unsubscribed"
    assert site.client.post(path, data={"csrf": token}).status_code == 200
    assert site.status("ann@example.org") == "unsubscribed"
    preferences = re.search(r'href="([^"]+)" id="preferences-link"', done.text).group(1)
    assert site.client.get(site.path(preferences)).status_code == 200


def test_the_button_without_a_valid_csrf_token_is_refused(site: Site) -> None:
    row = site.add("ann@example.org")
    path = site.unsubscribe_path(row)
    site.client.get(path)  # has the cookie
    assert site.client.post(path, data={}).status_code == 403
    assert site.client.post(path, data={"csrf": "forged"}).status_code == 403
    other = site.fresh_client()  # the right token but another session's cookie
    token = csrf_of(other.get(path).text)
    assert site.client.post(path, data={"csrf": token}).status_code == 403
    assert site.fresh_client().post(path, data={"csrf": token}).status_code == 403  # no cookie at all
    assert site.status("ann@example.org") == "active"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "bare"])
def test_one_click_unsubscribes_with_no_cookie_and_no_page(site: Site, encoding: str) -> None:
    row = site.add("ann@example.org")
    path = site.unsubscribe_path(row)
    client = site.fresh_client()
    for _ in range(2):  # idempotent
        if encoding == "urlencoded":
            response = client.post(path, data={"List-Unsubscribe": "One-Click"})
        elif encoding == "multipart":
            response = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
        else:
            response = client.post(path, content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        assert "set-cookie" not in response.headers
        assert_security_headers(response)
    assert site.status("ann@example.org") == "unsubscribed"
    assert site.status("ann@example.org", "monthly") is None


def test_one_click_leaves_a_bounced_subscription_bounced(site: Site) -> None:
    row = site.add("ann@example.org", "bounced")
    assert site.fresh_client().post(site.unsubscribe_path(row),
                                    data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert site.status("ann@example.org") == "bounced"


def test_the_link_in_a_confirmation_mail_header_unsubscribes_the_pending_address(site: Site) -> None:
    site.sign_up("ann@example.org")
    mail = site.one_mail()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.search(r"<(https?://[^>]+)>", mail["List-Unsubscribe"]).group(1)
    assert site.fresh_client().post(site.path(url), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert site.status("ann@example.org") == "unsubscribed"


def test_the_web_copy_link_without_a_token_explains_how_to_unsubscribe(site: Site) -> None:
    for path in ("unsubscribe", "unsubscribe/"):
        page = site.client.get(path)
        assert page.status_code == 200 and 'id="unsubscribe-help"' in page.text


# -- preferences -------------------------------------------------------------------------------


def preferences_post(site: Site, path: str, **data: str) -> httpx.Response:
    return site.client.post(path, data={"csrf": site.csrf(path), **data})


def test_preferences_list_every_list_and_change_them_one_at_a_time(site: Site) -> None:
    row = site.add("ann@example.org", name="<script>alert('Ann')</script>")
    path = site.preferences_path(row)
    page = site.client.get(path)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "&lt;script&gt;" in page.text and "<script>" not in page.text
    assert 'id="unsubscribe-weekly"' in page.text and 'id="subscribe-monthly"' in page.text
    done = preferences_post(site, path, action="unsubscribe", list="weekly")
    assert done.status_code == 200 and site.status("ann@example.org") == "unsubscribed"
    assert 'id="subscribe-weekly"' in done.text
    again = preferences_post(site, path, action="subscribe", list="weekly")
    assert again.status_code == 200 and site.status("ann@example.org") == "active"
    assert site.new_mails() == []  # their own unsubscribe is undone at once
    joined = preferences_post(site, path, action="subscribe", list="monthly")
    assert joined.status_code == 200 and site.status("ann@example.org", "monthly") == "pending"
    assert site.confirm(site.one_mail()).status_code == 200  # a new list needs the confirmation
    assert site.status("ann@example.org", "monthly") == "active"
    assert preferences_post(site, path, action="subscribe", list="nope").status_code == 400
    assert preferences_post(site, path, action="explode", list="weekly").status_code == 400
    assert site.client.post(path, data={"action": "unsubscribe", "list": "weekly"}).status_code == 403
    assert site.status("ann@example.org") == "active"


def test_a_bounced_or_complained_list_needs_confirmation_from_preferences(site: Site) -> None:
    row = site.add("ann@example.org", "complained")
    path = site.preferences_path(row)
    response = preferences_post(site, path, action="subscribe", list="weekly")
    assert response.status_code == 200 and "confirmation link" in response.text
    assert site.status("ann@example.org") == "complained"
    assert site.confirm(site.one_mail()).status_code == 200
    assert site.status("ann@example.org") == "active"


def test_an_unsubscribe_or_confirm_token_is_not_a_preferences_token(site: Site) -> None:
    row = site.add("ann@example.org")
    weekly = site.ctx.signer.token(row.id, row.secret, "weekly", "preferences")
    assert site.client.get(f"preferences/{weekly}").status_code == 400  # bound to every list ("*") only


def test_the_data_download_holds_the_subscriber_their_lists_and_deliveries(site: Site) -> None:
    row = site.add("ann@example.org", name="Ann")
    from publisher.schema import deliveries

    with site.ctx.store.begin() as conn:
        conn.execute(deliveries.insert().values(digest_id=7, subscriber_id=row.id, email="ann@example.org",
                                                state="sent", attempts=1, message_id="<m@x>",
                                                updated_at=START))
    response = preferences_post(site, site.preferences_path(row), action="export")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    data = json.loads(response.text)["subscriber"]
    assert data["email"] == "ann@example.org" and data["name"] == "Ann"
    assert [(s["list"], s["status"]) for s in data["subscriptions"]] == [("weekly", "active")]
    assert [(d["digest_id"], d["state"]) for d in data["deliveries"]] == [(7, "sent")]
    assert "secret" not in response.text and row.secret not in response.text


def test_deleting_asks_first_then_erases_the_subscriber(site: Site) -> None:
    row = site.add("ann@example.org")
    path = site.preferences_path(row)
    ask = preferences_post(site, path, action="delete")
    assert ask.status_code == 200 and 'id="delete-confirmed"' in ask.text
    assert site.subscribers.get("ann@example.org") is not None
    done = preferences_post(site, path, action="delete-confirmed")
    assert done.status_code == 200 and 'id="deleted"' in done.text
    assert site.subscribers.get("ann@example.org") is None
    assert site.client.get(path).status_code == 400  # the link dies with the subscriber


# -- security ------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: Site) -> None:
    row = site.add("ann@example.org")
    responses = [site.client.get(p) for p in ("", "subscribe/weekly", "unsubscribe", site.unsubscribe_path(row),
                                               site.preferences_path(row), "nothing", "subscribe/nope",
                                               "static/web.css", "healthz", "unsubscribe/bad")]
    responses.append(site.client.post("api/lists/weekly/subscribe", json={"email": "x@example.org"}))
    responses.append(site.client.post("subscribe/weekly", data={}))  # 403
    responses.append(site.client.put("subscribe/weekly"))  # 405
    responses.append(site.client.post("subscribe/weekly", content=b"x" * 70_000))  # 413
    responses.append(httpx.get(site.handle.url.removesuffix("newsletter/") + "elsewhere"))  # outside the base
    assert {r.status_code for r in responses} >= {200, 202, 400, 403, 404, 405, 413}
    for response in responses:
        assert_security_headers(response)
        if response.status_code != 200 or "static" not in str(response.url):
            assert response.headers["cache-control"] == "no-store"


def test_bodies_over_the_limit_get_413_before_they_are_read(site: Site) -> None:
    row = site.add("ann@example.org")
    path = site.unsubscribe_path(row)
    big = site.fresh_client().post(path, content=b"List-Unsubscribe=One-Click" + b"&x=1" * 20_000,
                                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b"List-Unsubscribe=One-Click&x="
        for _ in range(100):
            yield b"1" * 1000  # one long field: the form's field limit can't answer first

    streamed = site.fresh_client().post(path, content=chunks(),
                                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    assert site.status("ann@example.org") == "active"


def test_the_csrf_cookie_is_http_only_and_same_site(site: Site) -> None:
    cookie = site.fresh_client().get("subscribe/weekly").headers["set-cookie"]
    assert cookie.startswith("publisher_csrf=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/newsletter/" in cookie and "Secure" not in cookie


def test_on_https_the_cookie_is_secure_and_hsts_is_sent(tmp_path: Path, clock: FrozenClock) -> None:
    site = start(tmp_path, clock, url="https://coop.example.org/newsletter/")
    try:
        response = site.client.get("subscribe/weekly")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-publisher_csrf=") and "Secure" in cookie and "Path=/;" in cookie
        assert response.headers["strict-transport-security"].startswith("max-age=")
    finally:
        site.handle.stop()


def test_the_access_log_never_holds_a_token(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    row = site.add("ann@example.org")
    token = site.unsubscribe_path(row).removeprefix("unsubscribe/")
    caplog.set_level("INFO", logger="publisher.web.access")
    site.client.get(f"unsubscribe/{token}?utm=1")
    site.fresh_client().post(f"unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    site.client.get(site.preferences_path(row))
    site.handle.stop()  # flushes: the log line is written after the response
    lines = [r.getMessage() for r in caplog.records if r.name == "publisher.web.access"]
    assert any('"GET /newsletter/unsubscribe/… HTTP/1.1" 200' in line for line in lines)
    assert any('"POST /newsletter/unsubscribe/… HTTP/1.1" 200' in line for line in lines)
    assert all(token not in r.getMessage() and "utm" not in r.getMessage() for r in caplog.records)


# -- configuration ----------------------------------------------------------------------------------


def test_at_the_root_of_a_host_every_route_is_at_the_top(tmp_path: Path, clock: FrozenClock) -> None:
    site = start(tmp_path, clock, url="http://127.0.0.1/")
    try:
        assert site.handle.url.endswith("/") and urlsplit(site.handle.url).path == "/"
        assert site.client.get("subscribe/weekly").status_code == 200
        site.sign_up("ann@example.org")
        assert link(site.one_mail(), "confirm/").startswith("http://127.0.0.1/confirm/")
    finally:
        site.handle.stop()


def test_page_templates_can_be_overridden_from_the_config(tmp_path: Path, clock: FrozenClock) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "check-inbox.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}<p id="mine">Look for {{ list.title }}</p>{% endblock %}')
    site = start(tmp_path, clock, extra='templates = "own"')
    try:
        response = site.sign_up("ann@example.org")
        assert '<p id="mine">Look for Weekly &lt;b&gt;news&lt;/b&gt;</p>' in response.text
        assert 'class="skip-link"' in response.text  # still the built-in base layout
    finally:
        site.handle.stop()


def test_the_bare_base_path_shows_the_index_without_a_redirect(site: Site) -> None:
    response = httpx.get(site.handle.url.rstrip("/"), follow_redirects=False)
    assert response.status_code == 200 and 'id="lists"' in response.text
