"""Subscribers: addresses, names, per-list statuses, streaming CSV import and export."""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher import subscribers as subscribers_module
from publisher.clock import FrozenClock
from publisher.errors import SubscriberError
from publisher.state import Store
from publisher.subscribers import ImportReport, Subscribers, clean_name, normalise_email

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "subscribers"
START = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


def make(tmp_path: Path) -> tuple[Subscribers, FrozenClock]:
    clock = FrozenClock(START)
    store = Store(f"sqlite:///{tmp_path}/s.db", clock=clock)
    store.migrate()
    return Subscribers(store, clock), clock


@pytest.fixture
def subs(tmp_path):
    return make(tmp_path)[0]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def state(subs: Subscribers, list_name: str | None = None) -> dict[tuple[str, str | None], str | None]:
    return {(row.email, row.list): row.status for row in subs.iter(list_name)}


# -- addresses and names -------------------------------------------------------------


@pytest.mark.parametrize("given_, expected", [
    ("Ann@Example.COM", "ann@example.com"),
    ("  bob@example.org\n", "bob@example.org"),
    ("dave@EXÄMPLE.de", "dave@exämple.de"),
    ("dave@xn--exmple-cua.de", "dave@exämple.de"),  # the IDNA spelling is the same address
])
def test_addresses_have_one_canonical_form(given_, expected):
    assert normalise_email(given_) == expected


@pytest.mark.parametrize("bad", ["", "ann", "ann@", "@example.org", "ann@localhost", "a b@example.org",
                                 "ann@example.org\r\nBcc: x@y.org", "ann@exa mple.org", "ann@@example.org"])
def test_bad_addresses_are_one_line_errors(bad):
    with pytest.raises(SubscriberError) as info:
        normalise_email(bad)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


@given(st.text())
def test_no_control_character_survives_in_a_name(text):
    name = clean_name(text)
    if name is not None:
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in name)
        assert name == name.strip() and "  " not in name and len(name) <= subscribers_module.NAME_MAX
        assert clean_name(name) == name


def test_names_keep_their_words():
    assert clean_name("  Zoë\r\nBcc: evil@example.org\t ") == "Zoë Bcc: evil@example.org"
    assert clean_name("\x00\x1b[31m") == "[31m"
    assert clean_name(" \n ") is None


# -- one subscriber -------------------------------------------------------------------


def test_add_creates_a_subscriber_with_a_secret_and_subscriptions(subs):
    subscriber_id = subs.add("Ann@Example.org", "Ann\r\nX", lists=["news", "weekly"])
    row = subs.get("ann@example.org")
    assert row.id == subscriber_id and row.name == "Ann X"
    assert len(row.secret) == 32 and int(row.secret, 16) >= 0
    assert subs.secret(subscriber_id) == row.secret and subs.secret(subscriber_id + 1) is None
    assert state(subs) == {("ann@example.org", "news"): "active", ("ann@example.org", "weekly"): "active"}
    assert subs.add("ANN@example.org", lists=["news"]) == subscriber_id
    assert subs.get("ann@example.org").name == "Ann X"  # no name given: kept


def test_secrets_differ_between_subscribers(subs):
    a, b = subs.add("a@example.org"), subs.add("b@example.org")
    assert subs.secret(a) != subs.secret(b)


def test_status_changes_record_when(tmp_path):
    subs, clock = make(tmp_path)
    subscriber_id = subs.add("ann@example.org", lists=["news"], status="pending")
    row = next(subs.iter("news"))
    assert (row.status, row.status_at, row.confirmed_at) == ("pending", START, None)
    confirmed = clock.advance(hours=1)
    assert subs.set_status(subscriber_id, "news", "active") is True
    assert subs.set_status(subscriber_id, "news", "active") is False  # no change, no new timestamp
    clock.advance(hours=1)
    row = next(subs.iter("news"))
    assert (row.status, row.status_at, row.confirmed_at) == ("active", confirmed, confirmed)
    left = clock.advance(days=1)
    assert subs.remove("ANN@example.org", "news") == 1
    row = next(subs.iter("news"))
    assert (row.status, row.status_at, row.confirmed_at) == ("unsubscribed", left, confirmed)


def test_add_never_undoes_a_stop_unless_asked(subs, caplog):
    subscriber_id = subs.add("ann@example.org", lists=["news"])
    subs.remove("ann@example.org")
    subs.add("ann@example.org", lists=["news"])
    assert state(subs) == {("ann@example.org", "news"): "unsubscribed"}
    assert "not re-subscribed" in caplog.text
    subs.add("ann@example.org", lists=["news"], resubscribe=True)
    assert state(subs) == {("ann@example.org", "news"): "active"}
    subs.add("ann@example.org", lists=["news"], status="pending")
    assert state(subs) == {("ann@example.org", "news"): "active"}  # never downgraded to pending
    assert subs.get("ann@example.org").id == subscriber_id


def test_remove_needs_a_known_address_and_never_deletes(subs):
    subs.add("ann@example.org", lists=["news", "weekly"])
    with pytest.raises(SubscriberError, match="not a subscriber"):
        subs.remove("bob@example.org")
    with pytest.raises(SubscriberError, match="not subscribed to list other"):
        subs.remove("ann@example.org", "other")
    assert subs.remove("ann@example.org") == 2
    assert subs.remove("ann@example.org") == 0
    assert state(subs) == {("ann@example.org", "news"): "unsubscribed", ("ann@example.org", "weekly"): "unsubscribed"}


def test_set_status_checks_its_arguments(subs):
    subscriber_id = subs.add("ann@example.org", lists=["news"])
    with pytest.raises(SubscriberError, match="use one of"):
        subs.set_status(subscriber_id, "news", "gone")
    with pytest.raises(SubscriberError, match="not subscribed"):
        subs.set_status(subscriber_id, "weekly", "active")
    with pytest.raises(SubscriberError, match="use one of"):
        subs.add("bob@example.org", lists=["news"], status="bounced")


def test_a_hard_bounce_stops_at_once_and_soft_ones_at_the_threshold(subs):
    ann = subs.add("ann@example.org", lists=["news", "weekly"])
    bob = subs.add("bob@example.org", lists=["news"])
    assert subs.record_bounce(ann, "news", hard=True) == "bounced"
    assert subs.record_bounce(bob, "news", hard=False, threshold=3) == "active"
    assert subs.record_bounce(bob, "news", hard=False, threshold=3) == "active"
    assert subs.record_bounce(bob, "news", hard=False, threshold=3) == "bounced"
    assert state(subs) == {("ann@example.org", "news"): "bounced", ("ann@example.org", "weekly"): "active",
                           ("bob@example.org", "news"): "bounced"}
    assert [row.soft_bounces for row in subs.iter("news")] == [0, 3]


def test_bounces_never_revive_or_override_a_stop_and_activation_clears_soft_bounces(subs):
    ann = subs.add("ann@example.org", lists=["news"])
    subs.remove("ann@example.org")
    assert subs.record_bounce(ann, "news", hard=True) == "unsubscribed"
    bob = subs.add("bob@example.org", lists=["news"])
    subs.record_bounce(bob, "news", hard=False)
    subs.set_status(bob, "news", "pending")
    subs.set_status(bob, "news", "active")
    assert [row.soft_bounces for row in subs.iter("news", "active")] == [0]
    assert subs.record_bounce(bob, "other", hard=True) is None


def test_a_complaint_stops_every_status_and_none_means_every_list(subs):
    ann = subs.add("ann@example.org", lists=["news", "weekly"])
    subs.remove("ann@example.org", "weekly")
    subs.record_complaint(ann, None)
    assert set(state(subs).values()) == {"complained"}
    subs.remove("ann@example.org")  # an unsubscribe after a complaint keeps the complaint
    assert set(state(subs).values()) == {"complained"}


def test_count_and_iter_filter_and_page(subs):
    for n in range(7):
        subs.add(f"user{n}@example.org", lists=["news"] + (["weekly"] if n % 2 else []))
    subs.add("nolist@example.org")
    subs.remove("user3@example.org", "news")
    assert subs.count("news") == 6 and subs.count("news", "unsubscribed") == 1 and subs.count("weekly") == 3
    assert [row.email for row in subs.iter("weekly", page=2)] == [f"user{n}@example.org" for n in (1, 3, 5)]
    everything = [(row.email, row.list) for row in subs.iter(page=2)]
    assert len(everything) == 7 + 3 + 1 and ("nolist@example.org", None) in everything
    assert len(set(everything)) == len(everything)
    unsubscribed = [(row.email, row.list) for row in subs.iter(status="unsubscribed", page=2)]
    assert unsubscribed == [("user3@example.org", "news")]


# -- import ---------------------------------------------------------------------------


def test_import_reports_bad_rows_by_line_and_imports_the_rest(subs):
    report = subs.import_csv(FIXTURES / "mixed.csv", "news")
    assert (report.added, report.updated, report.skipped, report.bad, report.rows) == (5, 1, 0, 3, 9)
    assert [line for line, _ in report.bad_rows] == [4, 5, 12]
    assert report.bad_rows[0][1] == "no email address"
    assert "not-an-email" in report.bad_rows[1][1] and "localhost" in report.bad_rows[2][1]
    assert {row.email: row.name for row in subs.iter("news")} == {
        "ann@example.com": "Ann Again",  # the later row of a repeated address wins
        "bob@example.org": 'Bob "the builder"',
        "carol@example.net": "Carol Multi-line",
        "dave@exämple.de": "Dave",
        "eve@example.com": None,
    }
    assert "5 added, 1 already subscribed, 0 skipped" in report.line()


def test_import_never_revives_a_stopped_subscription(subs):
    ids = {name: subs.add(f"{name}@example.org", "Old", lists=["news"]) for name in ("un", "bo", "co", "ok")}
    subs.remove("un@example.org", "news")
    subs.record_bounce(ids["bo"], "news", hard=True)
    subs.record_complaint(ids["co"], "news")
    path = write_csv(subs_dir(subs) / "again.csv", [["email", "name"]] + [[f"{n}@example.org", "New"] for n in ids])
    report = subs.import_csv(path, "news")
    assert (report.added, report.updated, report.skipped) == (0, 1, 3)
    assert [line for line, _ in report.skipped_rows] == [2, 3, 4]
    assert [reason.split(":")[1].split()[0] for _, reason in report.skipped_rows] == ["unsubscribed", "bounced",
                                                                                       "complained"]
    assert {row.email: (row.status, row.name) for row in subs.iter("news")} == {
        "un@example.org": ("unsubscribed", "Old"), "bo@example.org": ("bounced", "Old"),
        "co@example.org": ("complained", "Old"), "ok@example.org": ("active", "New")}


def subs_dir(subs: Subscribers) -> Path:
    return Path(subs.store.url.removeprefix("sqlite:///")).parent


def test_import_confirms_pending_but_never_downgrades_active(subs):
    subs.add("pending@example.org", lists=["news"], status="pending")
    subs.add("active@example.org", lists=["news"])
    path = write_csv(subs_dir(subs) / "a.csv", [["email"], ["pending@example.org"], ["active@example.org"]])
    assert subs.import_csv(path, "news", status="pending").updated == 2
    assert state(subs, "news") == {("pending@example.org", "news"): "pending", ("active@example.org", "news"): "active"}
    subs.import_csv(path, "news")
    assert set(state(subs, "news").values()) == {"active"}
    assert all(row.confirmed_at is not None for row in subs.iter("news"))


def test_an_address_known_on_another_list_is_added_to_this_one(subs):
    subs.add("ann@example.org", "Ann", lists=["weekly"])
    path = write_csv(subs_dir(subs) / "a.csv", [["email"], ["ann@example.org"]])
    assert subs.import_csv(path, "news").added == 1
    assert state(subs) == {("ann@example.org", "news"): "active", ("ann@example.org", "weekly"): "active"}
    assert subs.get("ann@example.org").name == "Ann"


def test_import_without_an_email_column_names_the_file(subs):
    with pytest.raises(SubscriberError) as info:
        subs.import_csv(FIXTURES / "no-email-column.csv", "news")
    message = str(info.value)
    assert "no-email-column.csv" in message and "'email'" in message and "'mail'" in message
    assert "\n" not in message and subs.count("news") == 0


def test_import_of_an_empty_or_missing_file_is_one_clear_error(subs, tmp_path):
    (tmp_path / "empty.csv").write_text("\n\n")
    for path, words in ((tmp_path / "empty.csv", "empty"), (tmp_path / "missing.csv", "can't read")):
        with pytest.raises(SubscriberError, match=words) as info:
            subs.import_csv(path, "news")
        assert str(path) in str(info.value)


def test_a_row_that_is_not_utf8_is_reported_and_the_rest_imported(subs, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"email,name\nann@example.org,Ann\nzoe@example.org,Zo\xeb\nbob@example.org,Bob\n")
    report = subs.import_csv(path, "news")
    assert report.bad_rows == [(3, "not valid UTF-8; save the file as UTF-8")]
    assert sorted(row.email for row in subs.iter("news")) == ["ann@example.org", "bob@example.org"]


def test_a_malformed_row_does_not_stop_the_import(subs, tmp_path):
    path = write_csv(tmp_path / "big.csv", [["email"], ["x" * 140_000], ["ann@example.org"]])
    report = subs.import_csv(path, "news")
    assert [line for line, _ in report.bad_rows] == [2] and "malformed CSV" in report.bad_rows[0][1]
    assert state(subs) == {("ann@example.org", "news"): "active"}


def test_import_streams_in_chunks_and_repeats_apply_in_file_order(subs, tmp_path, monkeypatch):
    monkeypatch.setattr(subscribers_module, "CHUNK", 3)
    sizes: list[int] = []
    original = Subscribers._import_chunk

    def spy(self, chunk, *args):
        sizes.append(len(chunk))
        return original(self, chunk, *args)

    monkeypatch.setattr(Subscribers, "_import_chunk", spy)
    rows = [["email", "name"]] + [[f"u{n}@example.org", f"U{n}"] for n in range(8)]
    rows[5:5] = [["u1@example.org", "Again"]]  # line 6 repeats line 3
    report = subs.import_csv(write_csv(tmp_path / "a.csv", rows), "news")
    assert max(sizes) <= 3 and sum(sizes) == 9
    assert (report.added, report.updated) == (8, 1)
    assert subs.get("u1@example.org").name == "Again"


def test_import_rejects_a_bad_list_or_status_before_reading(subs):
    with pytest.raises(SubscriberError):
        subs.import_csv(FIXTURES / "mixed.csv", "news", status="unsubscribed")
    with pytest.raises(SubscriberError):
        subs.import_csv(FIXTURES / "mixed.csv", "")


def test_the_report_keeps_a_bounded_number_of_problems(monkeypatch):
    monkeypatch.setattr(subscribers_module, "MAX_PROBLEMS", 2)
    report = ImportReport("f.csv", "news")
    for line in range(5):
        report.reject(line, "bad")
    assert report.bad == 5 and len(report.bad_rows) == 2


name_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@given(st.lists(st.tuples(st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True), name_text), max_size=12))
def test_any_names_survive_a_csv_round_trip_cleaned(entries):
    with tempfile.TemporaryDirectory() as tmp:
        subs, _ = make(Path(tmp))
        rows = [[name, f"{local}@example.org"] for local, name in entries]
        report = subs.import_csv(write_csv(Path(tmp) / "in.csv", [["name", "email"]] + rows), "news")
        expected: dict[str, str | None] = {}
        for name, email in rows:
            try:
                address = normalise_email(email)
            except SubscriberError:
                continue
            expected[address] = clean_name(name) if clean_name(name) is not None else expected.get(address)
        assert {row.email: row.name for row in subs.iter("news")} == expected
        assert report.rows == len(rows)
        subs.store.close()


# -- export ------------------------------------------------------------------------------


def test_export_matches_the_golden_file_and_imports_back(tmp_path):
    subs, clock = make(tmp_path)
    subs.import_csv(FIXTURES / "mixed.csv", "news")
    clock.advance(days=1)
    subs.remove("bob@example.org", "news")
    subs.add("ann@example.com", lists=["weekly"], status="pending")
    subs.record_bounce(subs.get("carol@example.net").id, "news", hard=True)
    subs.add("nolist@example.com", "No List")
    out = tmp_path / "export.csv"
    assert subs.export_csv(out) == 7
    golden = FIXTURES / "expected" / "export.csv"
    if os.environ.get("PUBLISHER_REGEN_GOLDEN"):
        golden.write_bytes(out.read_bytes())
    assert out.read_bytes() == golden.read_bytes()
    assert subs.export_csv(tmp_path / "news.csv", "news") == 5

    again, _ = make(tmp_path / "again")
    report = again.import_csv(tmp_path / "news.csv", "news")
    assert report.added == 5 and {r.email: r.name for r in again.iter()} == {r.email: r.name for r in subs.iter("news")}
    assert not list(tmp_path.glob(".*.tmp"))


# -- portability ----------------------------------------------------------------------------


def test_the_same_paths_work_on_postgresql(tmp_path):
    """Runs when PUBLISHER_TEST_POSTGRES names an empty PostgreSQL database (its tables are dropped after)."""
    url = os.environ.get("PUBLISHER_TEST_POSTGRES")
    if not url:
        pytest.skip("set PUBLISHER_TEST_POSTGRES=postgresql+psycopg://... (an empty database) to run")
    from publisher.schema import metadata, subscribers, subscriptions

    store = Store(url, clock=FrozenClock(START))
    tables = [subscribers, subscriptions]
    with store.begin() as conn:  # not store.migrate(): migration 3's "INTEGER PRIMARY KEY" autoincrements on SQLite only
        metadata.create_all(conn, tables=tables)
    try:
        subs = Subscribers(store)
        ann = subs.add("ann@example.com", "Ann", lists=["news"])
        subs.remove("ann@example.com")
        report = subs.import_csv(FIXTURES / "mixed.csv", "news")
        assert (report.added, report.updated, report.skipped, report.bad) == (4, 0, 2, 3)
        assert [line for line, _ in report.skipped_rows] == [2, 11]  # both rows of the unsubscribed address
        assert subs.record_bounce(ann, "news", hard=False, threshold=1) == "unsubscribed"
        assert subs.count("news") == 4 and subs.export_csv(tmp_path / "out.csv") == 5
    finally:
        with store.begin() as conn:
            metadata.drop_all(conn, tables=tables)
        store.close()


def test_an_address_needing_smtputf8_is_refused_with_a_clear_reason():
    from publisher.subscribers import normalise_email

    with pytest.raises(SubscriberError) as caught:
        normalise_email("josé@example.org")
    assert "josé@example.org" in str(caught.value) and "\n" not in str(caught.value)
    assert normalise_email("jose@bücher.example") == "jose@bücher.example"  # an IDN domain is fine (IDNA on the wire)
