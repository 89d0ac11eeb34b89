"""Which posts a digest carries: first-published windows, the first-digest rule, kinds, authors, max_posts."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from publisher.digest import records
from publisher.errors import DigestError
from publisher.digest.select import next_slot, previous_slot

from .test_digest_site import COMPOSE_AT, SLOT, UTC, WEEK, site, snip  # noqa: F401  (site is a fixture)

LONDON = ZoneInfo("Europe/London")


# -- cron slots ---------------------------------------------------------------


def test_previous_slot_of_a_weekly_schedule_across_the_clock_change():
    slot = datetime(2024, 4, 5, 15, 0, tzinfo=UTC)  # Friday 16:00 BST
    assert previous_slot("0 16 * * fri", LONDON, slot) == datetime(2024, 3, 29, 16, 0, tzinfo=UTC)  # 16:00 GMT


def test_previous_slot_is_strictly_before_and_next_slot_strictly_after():
    assert previous_slot("0 16 * * fri", LONDON, SLOT + timedelta(seconds=1)) == SLOT
    assert previous_slot("0 16 * * fri", LONDON, SLOT) == SLOT - WEEK
    assert next_slot("0 16 * * fri", LONDON, SLOT) == SLOT + WEEK
    assert next_slot("0 16 * * fri", LONDON, SLOT - timedelta(seconds=1)) == SLOT


@pytest.mark.parametrize(("schedule", "expected"), [
    ("*/5 * * * *", datetime(2024, 3, 8, 15, 55, tzinfo=UTC)),
    ("0 9 1 * *", datetime(2024, 3, 1, 9, 0, tzinfo=UTC)),
    ("0 0 1 1 *", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
    ("0 12 29 2 *", datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),
])
def test_previous_slot_of_rare_schedules(schedule, expected):
    assert previous_slot(schedule, LONDON, SLOT) == expected


def test_previous_slot_of_a_leap_day_schedule_looks_back_years():
    assert previous_slot("0 12 29 2 *", LONDON, datetime(2028, 1, 1, tzinfo=UTC)) == datetime(2024, 2, 29, 12,
                                                                                                tzinfo=UTC)


def test_a_schedule_that_never_fires_is_a_digest_error(site):
    site.configure('[lists.never]\ntitle = "Never"\nschedule = "0 0 31 2 *"\nfrom_address = "n@digest.example.net"\n')
    with pytest.raises(DigestError, match=r"^list never: lists\.never\.schedule: .*no slot"):
        site.compose("never")
    with pytest.raises(DigestError, match=r"^list never: lists\.never\.schedule: .*never fires"):
        site.composer().preview("never")


# -- windows --------------------------------------------------------------------


def test_the_first_digest_leaves_out_old_drafts_future_and_other_kinds(site):
    site.compose()
    row = site.digest_rows()[0]
    assert site.names(json.loads(row.post_ids)) == ["week-10", "tools-and-tricks", "open-day"]  # newest first
    assert row.since is None and row.cutoff == COMPOSE_AT and row.scheduled_for == SLOT
    assert row.status == "composed" and row.created_at == COMPOSE_AT


def test_a_back_dated_post_first_published_later_is_sent_once(site):
    site.compose()
    site.write("blog/late-report.snip.markdown", snip("The report we forgot.", "2024-03-02 09:00:00 +00:00",
                                                      "Late report"))
    site.build(at=datetime(2024, 3, 10, 12, 0, tzinfo=UTC))
    second = site.compose(slot=SLOT + WEEK)
    assert [post.title for post in second.posts] == ["Late report"]
    assert "The report we forgot." in second.letter.html  # rendered now: the build kept it out of the feeds
    assert site.digest_rows()[1].since == COMPOSE_AT
    site.build(at=datetime(2024, 3, 20, 12, 0, tzinfo=UTC))
    assert site.compose(slot=SLOT + 2 * WEEK) is None
    assert site.digest_count() == 2


def test_an_edited_post_is_not_sent_again(site, caplog):
    site.compose()
    path = site.root / "posts/weeknotes/week-10.snip.markdown"
    path.write_text(path.read_text().replace("A busy week", "A very busy week"))
    report = site.build(at=datetime(2024, 3, 12, 12, 0, tzinfo=UTC))
    assert report.sync.changed == 1
    with caplog.at_level(logging.INFO, logger="publisher.digest"):
        assert site.compose(slot=SLOT + WEEK) is None
    assert site.digest_count() == 1
    assert "list weekly: nothing new since 2024-03-08T16:00:05+00:00" in caplog.text


def test_a_post_made_visible_by_time_goes_in_the_digest_after_it_appears(site):
    site.compose()
    site.build(at=datetime(2024, 4, 20, 12, 0, tzinfo=UTC))  # next-month's date has come
    later = site.compose(slot=datetime(2024, 4, 26, 15, 0, tzinfo=UTC))
    assert [post.title for post in later.posts] == ["Next month"]


def test_nothing_new_is_no_digest_and_a_log_line(site, caplog):
    with caplog.at_level(logging.INFO, logger="publisher.digest"):
        assert site.compose(slot=SLOT - 3 * WEEK) is None  # a slot before any post was published
    assert site.digest_count() == 0
    assert "list weekly: nothing new since 2024-02-09T16:00:00+00:00; no digest for 2024-02-16T16:00:00+00:00" \
        in caplog.text


def test_a_list_takes_only_its_authors(site):
    composed = site.compose("ana", slot=datetime(2024, 3, 8, 8, 0, tzinfo=UTC), at=COMPOSE_AT)
    # 'reading' is Ana's too, but created before the slot before this first digest
    assert [post.title for post in composed.posts] == ["Week 10"]
    assert all(post.author == "Ana Silva" for post in composed.posts)


def test_max_posts_keeps_the_newest_and_says_how_many_more(site):
    composed = site.compose("short")  # every kind: week-10, reading, tools-and-tricks, open-day
    assert [post.title for post in composed.posts] == ["Week 10", "Reading"]
    assert "And 2 more new posts" in composed.letter.html
    assert "And 2 more new posts on the site: https://digest.example.net/" in composed.letter.text
    assert site.compose("short", slot=SLOT + WEEK) is None  # the two left out are not carried over


# -- one digest per slot ----------------------------------------------------------


def test_two_composers_for_one_slot_make_one_digest(site):
    first = site.compose()
    second = site.composer().compose("weekly", SLOT)
    assert site.digest_count() == 1
    assert second.digest_id == first.digest_id
    assert second.letter == first.letter
    assert [post.id for post in second.posts] == [post.id for post in first.posts]


def test_a_composer_that_loses_the_race_returns_the_winners_digest(site, monkeypatch, caplog):
    real_reserve = records.reserve
    winner: list = []
    calls: list = []

    def reserve_after_the_winner(conn, *args):  # another composer commits between our look and our insert
        calls.append(args)
        if len(calls) == 1:
            winner.append(site.composer().compose("weekly", SLOT))
        return real_reserve(conn, *args)

    monkeypatch.setattr(records, "reserve", reserve_after_the_winner)
    site.clock.set(COMPOSE_AT)
    with caplog.at_level(logging.INFO, logger="publisher.digest"):
        loser = site.composer().compose("weekly", SLOT)
    assert len(calls) == 2 and winner[0].digest_id is not None
    assert loser.digest_id == winner[0].digest_id and site.digest_count() == 1
    assert loser.letter == winner[0].letter
    assert "was composed by another process" in caplog.text
