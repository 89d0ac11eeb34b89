"""Digest slots: a list's cron in its timezone, the grace time after downtime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from publisher.config import ListConfig
from publisher.digest.select import previous_slot
from publisher.newsletter import latest_slot

LONDON = ZoneInfo("Europe/London")


def weekly(**extra: object) -> ListConfig:
    values = {"title": "W", "schedule": "0 16 * * fri", "timezone": "Europe/London", "from_address": "a@example.org"}
    return ListConfig(**{**values, **extra})


def test_the_slot_is_friday_16_00_london_time_in_summer_and_winter():
    summer = latest_slot(weekly(), datetime(2024, 7, 5, 15, 0, 30, tzinfo=timezone.utc))
    winter = latest_slot(weekly(), datetime(2024, 1, 5, 16, 0, 30, tzinfo=timezone.utc))
    assert summer.astimezone(timezone.utc) == datetime(2024, 7, 5, 15, 0, tzinfo=timezone.utc)
    assert winter.astimezone(timezone.utc) == datetime(2024, 1, 5, 16, 0, tzinfo=timezone.utc)


def test_a_slot_missed_within_the_grace_time_is_still_due():
    back = datetime(2024, 1, 5, 16, 0, tzinfo=timezone.utc) + timedelta(hours=11, minutes=59)
    assert latest_slot(weekly(), back) == datetime(2024, 1, 5, 16, 0, tzinfo=LONDON)


def test_a_slot_missed_by_more_than_the_grace_time_is_skipped():
    back = datetime(2024, 1, 5, 16, 0, tzinfo=timezone.utc) + timedelta(hours=12, minutes=1)
    assert latest_slot(weekly(), back) is None
    assert latest_slot(weekly(grace="2d"), back) == datetime(2024, 1, 5, 16, 0, tzinfo=LONDON)


def test_the_first_digest_starts_at_the_previous_slot():
    slot = datetime(2024, 1, 12, 16, 0, tzinfo=LONDON)
    assert previous_slot("0 16 * * fri", LONDON, slot) == datetime(2024, 1, 5, 16, 0, tzinfo=LONDON)
    assert previous_slot("0 9 1 * *", LONDON, datetime(2024, 3, 1, 9, 0, tzinfo=LONDON)) == datetime(2024, 2, 1, 9, 0, tzinfo=LONDON)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(timezone.utc)))
def test_the_latest_slot_is_never_in_the_future_nor_older_than_the_grace(now: datetime):
    mailing_list = weekly(schedule="30 7 * * mon,thu", grace="4d")
    slot = latest_slot(mailing_list, now)
    assert slot is not None  # two slots a week, four days of grace: there is always one
    assert now - timedelta(days=4) <= slot <= now
    assert (slot.astimezone(LONDON).hour, slot.astimezone(LONDON).minute) == (7, 30)
