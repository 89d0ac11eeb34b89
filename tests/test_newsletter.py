"""Digests end to end on a real SQLite file and the outbox provider: schedule slot -> compose -> send -> ledger.

Time is a FrozenClock; posts are built by the real builder; messages are read
back from the outbox with the stdlib email parser.
"""

from __future__ import annotations

import email
import email.policy
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from publisher.build import Builder
from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.ledger import Ledger
from publisher.newsletter import Newsletter, latest_slot
from publisher.state import Store
from publisher.subscribers import Subscribers
from publisher.tokens import Signer, server_secret

from .conftest import FIXTURES

LIST = """
[lists.weekly]
title = "Fixture weekly"
schedule = "0 16 * * fri"
timezone = "Europe/London"
from_address = "news@fixture.example.net"
from_name = "Fixture Co-op"
provider = "outbox"

[providers.outbox]
type = "outbox"
directory = "outbox"

[mail]
unsubscribe_mailto = "unsubscribe@fixture.example.net"
"""
ENV = {"PUBLISHER_SECRET": "test-server-secret"}


def post(site: Path, name: str, created: str, title: str) -> None:
    body = f"# {title}\n\nSome news about {name}, with [a link](/elsewhere#here).\n\n"
    (site / "posts" / "weeknotes" / f"{name}.snip.markdown").write_text(
        body + f":created_at: {created}\n:kind: blog\n:author: rowan-ash\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "site" / "posts", tmp_path / "posts")
    (tmp_path / "config.toml").write_text((FIXTURES / "site" / "config.toml").read_text() + LIST)
    return tmp_path


class World:
    def __init__(self, site: Path) -> None:
        self.site = site
        self.config = load_config(site / "config.toml")
        self.clock = FrozenClock(datetime(2024, 4, 1, 12, 0, tzinfo=timezone.utc))
        self.builder = Builder(self.config, clock=self.clock)
        self.builder.build()
        self.store = Store(self.config.database_url, clock=self.clock)
        self.newsletter = Newsletter(self.config, self.store, clock=self.clock, environ=ENV)

    def at(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.builder.build()

    def slot(self) -> datetime:
        found = latest_slot(self.config.lists["weekly"], self.clock.now())
        assert found is not None
        return found

    def messages(self) -> list[email.message.EmailMessage]:
        files = sorted((self.site / "outbox").rglob("*.eml"))
        return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


@pytest.fixture
def world(site: Path):
    w = World(site)
    Subscribers(w.store, clock=w.clock).add("ada@example.org", name="Ada <b>Lovelace</b>", lists=["weekly"])
    Subscribers(w.store, clock=w.clock).add("bob@example.org", lists=["weekly"])
    Subscribers(w.store, clock=w.clock).add("gone@example.org", lists=["weekly"])
    Subscribers(w.store, clock=w.clock).remove("gone@example.org", "weekly")
    yield w
    w.builder.close()
    w.store.close()


def test_the_first_digest_holds_only_posts_new_since_the_previous_slot(world: World):
    post(world.site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    world.at(datetime(2024, 4, 2, 10, 0, tzinfo=timezone.utc))
    world.clock.set(datetime(2024, 4, 5, 15, 0, 5, tzinfo=timezone.utc))  # Friday 16:00:05 in London (BST)
    outcome = world.newsletter.run_slot("weekly", world.slot())
    assert outcome.digest_id is not None and outcome.report.sent == 2
    messages = world.messages()
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == ["ada@example.org", "bob@example.org"]
    for message in messages:
        html = message.get_body(("html",)).get_content()
        assert "Fresh news" in html and "Week 1" not in html  # the imported archive is not mailed
        assert "https://fixture.example.net/elsewhere#here" in html
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ada = next(m for m in messages if "ada@" in str(m["To"]))
    assert ada["To"].addresses[0].display_name == "Ada <b>Lovelace</b>"
    assert "<b>Lovelace" not in ada.get_body(("html",)).get_content()  # a name is text, never markup


def test_each_unsubscribe_link_is_signed_for_its_subscriber_and_list(world: World):
    post(world.site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    world.at(datetime(2024, 4, 5, 15, 0, 5, tzinfo=timezone.utc))
    world.newsletter.run_slot("weekly", world.slot())
    signer = Signer(server_secret(world.config, ENV))
    from sqlalchemy import select

    from publisher.schema import subscribers

    with world.store.begin() as conn:
        rows = list(conn.execute(select(subscribers.c.id, subscribers.c.email, subscribers.c.secret)))
    secrets = {row.email: row.secret for row in rows}
    ids = {row.email: row.id for row in rows}
    for message in world.messages():
        address = message["To"].addresses[0].addr_spec
        url = message["List-Unsubscribe"].split("<")[1].split(">")[0]
        assert url.startswith(world.config.web_url + "unsubscribe/")
        token = url.rsplit("/", 1)[1]
        by_id = {ids[a]: secrets[a] for a in ids}
        assert signer.verify(token, "unsubscribe", by_id.get, world.clock.now()) == (ids[address], "weekly")


def test_a_slot_is_sent_once_even_when_run_again(world: World):
    post(world.site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    world.at(datetime(2024, 4, 5, 15, 0, 5, tzinfo=timezone.utc))
    first = world.newsletter.run_slot("weekly", world.slot())
    before = {p: p.stat().st_mtime_ns for p in (world.site / "outbox").rglob("*.eml")}
    again = world.newsletter.run_slot("weekly", world.slot())
    assert again.digest_id == first.digest_id
    assert {p: p.stat().st_mtime_ns for p in (world.site / "outbox").rglob("*.eml")} == before
    assert Ledger(world.store).counts(first.digest_id).get("sent") == 2


def test_the_next_digest_has_only_what_is_new_and_nothing_new_sends_nothing(world: World, caplog):
    post(world.site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    world.at(datetime(2024, 4, 5, 15, 0, 5, tzinfo=timezone.utc))
    world.newsletter.run_slot("weekly", world.slot())
    post(world.site, "later-news", "2024-04-08 09:00:00 +0000", "Later news")
    post(world.site, "backdated", "2023-12-01 09:00:00 +0000", "Backdated but new")
    world.at(datetime(2024, 4, 9, 10, 0, tzinfo=timezone.utc))
    world.clock.set(datetime(2024, 4, 12, 15, 0, 1, tzinfo=timezone.utc))
    second = world.newsletter.run_slot("weekly", world.slot())
    html = [m.get_body(("html",)).get_content() for m in world.messages()]
    newest = [h for h in html if "Later news" in h]
    assert len(newest) == 2 and all("Backdated but new" in h and "Fresh news" not in h for h in newest)
    assert second.report.sent == 2
    world.clock.set(datetime(2024, 4, 19, 15, 0, 1, tzinfo=timezone.utc))
    with caplog.at_level(logging.INFO, logger="publisher"):
        third = world.newsletter.run_slot("weekly", world.slot())
    assert third.digest_id is None and "no new posts" in third.line()
    assert len(world.messages()) == 4


def test_preview_writes_files_and_records_nothing(world: World, tmp_path: Path):
    post(world.site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    world.at(datetime(2024, 4, 4, 12, 0, tzinfo=timezone.utc))  # the day before the slot
    paths = world.newsletter.preview("weekly", tmp_path / "preview")
    assert sorted(p.suffix for p in paths) == [".eml", ".html", ".txt"]
    assert "Fresh news" in (tmp_path / "preview" / "weekly.html").read_text()
    parsed = email.message_from_bytes((tmp_path / "preview" / "weekly.eml").read_bytes(), policy=email.policy.default)
    assert parsed["Subject"].startswith("Fixture weekly")
    assert not (world.site / "outbox").exists()
    from publisher.newsletter import recent_digests

    assert recent_digests(world.store) == []


def test_digest_send_first_finishes_an_interrupted_digest(world: World):
    post(world.site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    world.at(datetime(2024, 4, 5, 15, 0, 5, tzinfo=timezone.utc))
    composed = world.newsletter.composer().compose("weekly", world.slot())
    ledger = Ledger(world.store, clock=world.clock)
    ledger.enqueue(composed.digest_id, "weekly", world.config.message_id_domain)
    ledger.start(composed.digest_id)  # as if a sender had started and been killed before sending anything
    assert ledger.counts(composed.digest_id)["queued"] == 2 and world.messages() == []
    world.clock.advance(minutes=10)
    outcome = world.newsletter.send_now("weekly")
    assert outcome.digest_id == composed.digest_id and outcome.report.sent == 2
    assert len(world.messages()) == 2 and Ledger(world.store).counts(composed.digest_id)["sent"] == 2
