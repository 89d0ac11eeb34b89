"""Forgetting a person: every row goes, only a salted hash stays, and nobody adds them back silently."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from publisher.errors import SubscriberError
from publisher.forget import forget, personal_data
from publisher.schema import deliveries, meta, subscribers, subscriptions, suppressions
from publisher.suppress import SALT_KEY, email_hash, is_suppressed, suppress, suppressed_among, unsuppress
from publisher.subscribers import Subscribers

from .test_web_hooks import NOW, make_site


@pytest.fixture
def site(tmp_path):
    made = make_site(tmp_path)
    yield made
    made.store.close()


def count(site, table, *where) -> int:
    with site.store.begin() as conn:
        return conn.scalar(select(func.count()).select_from(table).where(*where))


def populate(site):
    ann = site.add("ann@example.com")
    bob = site.add("bob@example.com")
    ids = [site.digest(when=NOW - timedelta(days=7 * n)) for n in range(3)]
    for digest in ids:
        site.delivery(digest, ann, "ann@example.com")
        site.delivery(digest, bob, "bob@example.com")
    return ann, bob, ids


def test_forget_erases_every_row_and_keeps_only_the_hash(site):
    ann, bob, _ = populate(site)
    report = forget(site.store, site.config, "  Ann@Example.COM ", clock=site.clock)
    assert (report.found, report.subscriptions, report.deliveries, report.newly_suppressed) == (True, 2, 3, True)
    assert count(site, subscribers, subscribers.c.id == ann) == 0
    assert count(site, subscriptions, subscriptions.c.subscriber_id == ann) == 0
    assert count(site, deliveries, deliveries.c.subscriber_id == ann) == 0
    assert count(site, deliveries, deliveries.c.email == "ann@example.com") == 0
    # everyone else is untouched
    assert count(site, subscriptions, subscriptions.c.subscriber_id == bob) == 2
    assert count(site, deliveries, deliveries.c.subscriber_id == bob) == 3
    with site.store.begin() as conn:
        salt = conn.scalar(select(meta.c.value).where(meta.c.key == SALT_KEY))
        row = conn.execute(select(suppressions)).one()
    assert row.email_hash == hashlib.sha256((salt + "ann@example.com").encode()).hexdigest()
    assert row.reason == "forgotten" and row.created_at == NOW
    assert "ann@example.com" not in report.line() and report.fingerprint in report.line()


def test_the_address_is_gone_from_the_database_files(site):
    """Not only from the tables: from free pages and the write-ahead log too (the store stays open)."""
    from sqlalchemy import event

    event.listen(site.store.engine, "connect", lambda dbapi, record: dbapi.execute("PRAGMA secure_delete=OFF"))
    site.store.engine.dispose()  # connections as a SQLite built without secure_delete makes them
    populate(site)
    files = {path.name: path for path in site.config.state_dir.iterdir() if path.name.startswith("publisher.db")}
    assert any(b"ann@example.com" in path.read_bytes() for path in files.values())
    forget(site.store, site.config, "ann@example.com", clock=site.clock)
    for name, path in files.items():
        if path.exists():
            assert b"ann@example.com" not in path.read_bytes(), name
    assert b"bob@example.com" in files["publisher.db"].read_bytes()
    with site.store.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 0  # put back as it was


def test_deliveries_are_matched_by_address_too(site):
    ann = site.add("ann@example.com")
    site.delivery(site.digest(), ann + 100, "ann@example.com")  # a ledger row whose subscriber ID no longer matches
    report = forget(site.store, site.config, "ann@example.com", clock=site.clock)
    assert report.deliveries == 1
    assert count(site, deliveries) == 0


def test_outbox_copies_of_their_messages_are_deleted(site):
    from publisher.providers.outbox import file_name

    ann, bob, ids = populate(site)
    outbox = site.config.resolve(site.config.providers["outbox"].directory)
    paths = {}
    for who, sid in (("ann", ann), ("bob", bob)):
        message_id = f"<d{ids[0]}.s{sid}.abcdefgh@example.com>"
        paths[who] = outbox / str(ids[0]) / file_name(message_id)
        paths[who].parent.mkdir(parents=True, exist_ok=True)
        paths[who].write_bytes(b"To: someone\r\n\r\nhello\r\n")
    report = forget(site.store, site.config, "ann@example.com", clock=site.clock)
    assert report.files == 1
    assert not paths["ann"].exists() and paths["bob"].exists()


def test_an_unknown_address_is_still_suppressed_and_twice_is_harmless(site):
    first = forget(site.store, site.config, "carol@example.com", clock=site.clock)
    second = forget(site.store, site.config, "carol@example.com", clock=site.clock)
    assert (first.found, first.newly_suppressed) == (False, True)
    assert (second.found, second.newly_suppressed) == (False, False)
    assert count(site, suppressions) == 1
    with site.store.begin() as conn:
        assert is_suppressed(conn, "Carol@example.com")


def test_forget_refuses_what_is_not_an_address(site):
    with pytest.raises(SubscriberError):
        forget(site.store, site.config, "not an address", clock=site.clock)


def test_is_suppressed_answers_for_every_spelling_and_only_for_them(site):
    populate(site)
    with site.store.begin() as conn:
        assert not is_suppressed(conn, "ann@example.com")  # nothing suppressed yet: no salt either
        assert conn.scalar(select(meta.c.value).where(meta.c.key == SALT_KEY)) is None
    forget(site.store, site.config, "ann@example.com", clock=site.clock)
    with site.store.begin() as conn:
        assert is_suppressed(conn, "ann@example.com")
        assert is_suppressed(conn, "ANN@EXAMPLE.COM")
        assert not is_suppressed(conn, "bob@example.com")
        assert suppressed_among(conn, ["bob@example.com", "ann@example.com", "cat@example.com"]) == {
            "ann@example.com"}


def test_the_salt_is_made_once_per_installation(tmp_path):
    one, two = make_site(tmp_path / "one"), make_site(tmp_path / "two")
    try:
        for site in (one, two):
            forget(site.store, site.config, "ann@example.com", clock=site.clock)
            forget(site.store, site.config, "bob@example.com", clock=site.clock)
        salts, hashes = [], []
        for site in (one, two):
            with site.store.begin() as conn:
                salts.append(conn.scalar(select(meta.c.value).where(meta.c.key == SALT_KEY)))
                hashes.append(set(conn.scalars(select(suppressions.c.email_hash))))
                assert conn.scalar(select(func.count()).select_from(meta).where(meta.c.key == SALT_KEY)) == 1
        assert salts[0] != salts[1] and len(salts[0]) == 64
        assert not hashes[0] & hashes[1]  # the same address hashes differently elsewhere
        assert email_hash(salts[0], "ann@example.com") in hashes[0]
    finally:
        one.store.close()
        two.store.close()


def test_unsuppress_lifts_it_and_reasons_are_checked(site):
    with site.store.begin() as conn:
        assert suppress(conn, "dan@example.com", "complained", NOW)
        assert not suppress(conn, "dan@example.com", "complained", NOW)
        assert unsuppress(conn, "dan@example.com") and not is_suppressed(conn, "dan@example.com")
        assert not unsuppress(conn, "dan@example.com")
        with pytest.raises(ValueError):
            suppress(conn, "dan@example.com", "because", NOW)


def test_personal_data_holds_everything_stored_about_them(site):
    ann, _, ids = populate(site)
    with site.store.begin() as conn:
        data = personal_data(conn, ann)
        assert personal_data(conn, 9999) == {}
    assert data["email"] == "ann@example.com"
    assert [s["list"] for s in data["subscriptions"]] == ["links", "weekly"]
    assert sorted(d["digest_id"] for d in data["deliveries"]) == sorted(ids)
    assert data["subscriptions"][0]["status"] == "active" and data["created_at"] == NOW.isoformat(timespec="seconds")


def test_the_hook_refuses_a_forgotten_address_before_anything_is_added(site):
    """What subscribers add/import/sign-up must do: ask suppress.is_suppressed (or suppressed_among) first."""
    forget(site.store, site.config, "ann@example.com", clock=site.clock)
    with site.store.begin() as conn:
        refused = [email for email in ("ann@example.com", "bob@example.com") if is_suppressed(conn, email)]
    assert refused == ["ann@example.com"]


def test_subscribers_add_and_import_refuse_a_forgotten_address(site, tmp_path):
    forget(site.store, site.config, "ann@example.com", clock=site.clock)
    api = Subscribers(site.store, clock=site.clock)
    csv = tmp_path / "people.csv"
    csv.write_text("email,name\nann@example.com,Ann\nbob@example.com,Bob\n", encoding="utf-8")
    report = api.import_csv(csv, "weekly")
    assert report.added == 1 and api.get("ann@example.com") is None
    with pytest.raises(SubscriberError):
        api.add("Ann@example.com", lists=["weekly"])
    assert api.get("ann@example.com") is None
