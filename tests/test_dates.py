"""publisher.dates.parse_date: every date shape of the corpus and of front matter."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher.dates import parse_date

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")


def offset(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes if hours >= 0 else -minutes))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the corpus's shapes
        ("2018-03-16 12:23:42.686103000 +00:00", datetime(2018, 3, 16, 12, 23, 42, 686103, tzinfo=UTC)),
        ("2018-03-16 12:23:42.686103999 +00:00", datetime(2018, 3, 16, 12, 23, 42, 686103, tzinfo=UTC)),
        ("2013-01-25 14:27:26 +0000", datetime(2013, 1, 25, 14, 27, 26, tzinfo=UTC)),
        ("2013-01-25 14:27:26 -0500", datetime(2013, 1, 25, 14, 27, 26, tzinfo=offset(-5))),
        ("2018-01-19 12:22:00 -05:00", datetime(2018, 1, 19, 12, 22, tzinfo=offset(-5))),
        ("2016-07-01 09:00:00 +01:00", datetime(2016, 7, 1, 9, tzinfo=offset(1))),
        ("2015-06-05 16:41:29.5 +01:00", datetime(2015, 6, 5, 16, 41, 29, 500000, tzinfo=offset(1))),
        ("2019-09-14 11:38:33.210434000 -04:00", datetime(2019, 9, 14, 11, 38, 33, 210434, tzinfo=offset(-4))),
        # ISO 8601 and friends
        ("2024-01-02T09:30:00Z", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
        ("2024-01-02T09:30:00+05:30", datetime(2024, 1, 2, 9, 30, tzinfo=offset(5, 30))),
        ("2024-01-02t09:30:00z", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
        ("2024-01-02 09:30:00 UTC", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
        ("2024-01-02 09:30 +0530", datetime(2024, 1, 2, 9, 30, tzinfo=offset(5, 30))),
        ("2024-01-02 09:30:00 +05", datetime(2024, 1, 2, 9, 30, tzinfo=offset(5))),
        ("2024-1-2 9:05:00 +00:00", datetime(2024, 1, 2, 9, 5, tzinfo=UTC)),
        ("2024-01-02 09:30:00,25 -0230", datetime(2024, 1, 2, 9, 30, 0, 250000, tzinfo=offset(-2, 30))),
        ("  2024-01-02 09:30:00 +00:00  ", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
        # naive: the site's timezone
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("2024-01-02 09:30:00", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
        ("2024-01-02T09:30", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
    ],
)
def test_every_shape(text: str, expected: datetime) -> None:
    parsed = parse_date(text, UTC)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_naive_times_are_read_in_the_site_timezone() -> None:
    summer = parse_date("2024-07-01 09:00:00", LONDON)
    winter = parse_date("2024-01-01 09:00:00", LONDON)
    assert summer.utcoffset() == timedelta(hours=1)
    assert winter.utcoffset() == timedelta(0)
    assert parse_date("2024-07-01", LONDON) == datetime(2024, 6, 30, 23, 0, tzinfo=UTC)
    # an explicit offset wins over the site's timezone
    assert parse_date("2024-07-01 09:00:00 +00:00", LONDON).utcoffset() == timedelta(0)


def test_date_and_datetime_objects() -> None:
    assert parse_date(date(2024, 5, 6), offset(2)) == datetime(2024, 5, 6, tzinfo=offset(2))
    naive = datetime(2024, 5, 6, 7, 8, 9)
    assert parse_date(naive, offset(2)) == datetime(2024, 5, 6, 7, 8, 9, tzinfo=offset(2))
    aware = datetime(2024, 5, 6, 7, 8, 9, tzinfo=offset(-3))
    assert parse_date(aware, UTC) is aware


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2013-02-30 10:00:00 +0000", "day is out of range"),
        ("2013-02-29", "day is out of range"),
        ("2024-13-01 10:00:00 +0000", "month must be in 1..12"),
        ("2024-01-02 25:00:00 +0000", "hour must be in 0..23"),
        ("2024-01-02 10:61:00 +0000", "minute must be in 0..59"),
        ("2024-01-02 10:00:60 +0000", "second must be in 0..59"),
        ("2024-01-02 10:00:00 +2400", "out of range"),
        ("0000-01-02 10:00:00 +0000", "year 0 is out of range"),
    ],
)
def test_impossible_dates_say_why_and_what_shape_to_use(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_date(text, UTC)
    message = str(caught.value)
    assert why in message
    assert repr(text) in message
    assert "YYYY-MM-DD HH:MM:SS +HH:MM" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "value",
    ["last tuesday", "", "2024", "16/03/2018", "2024-01-02 10:00:00 +00:00 extra", "２０２４-01-02", "2024-01-02x10:00"],
)
def test_text_that_is_not_a_date(value: str) -> None:
    with pytest.raises(ValueError, match="is not a date: write it as YYYY-MM-DD"):
        parse_date(value, UTC)


@pytest.mark.parametrize("value", [2012, 2012.5, True, None, ["2024-01-02"], {"a": 1}])
def test_values_that_are_not_text_or_dates(value: object) -> None:
    with pytest.raises(ValueError, match="expected a date like YYYY-MM-DD"):
        parse_date(value, UTC)


_OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
_MOMENTS = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30), timezones=_OFFSETS
)


def _offset_text(moment: datetime, colon: bool) -> str:
    minutes = int(moment.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


@given(_MOMENTS, st.sampled_from(["ruby", "ruby-nanos", "soup", "iso", "iso-z"]))
def test_round_trip_through_every_written_shape(moment: datetime, shape: str) -> None:
    base = moment.strftime("%Y-%m-%d %H:%M:%S")
    if shape == "ruby":
        text, expected = f"{base} {_offset_text(moment, colon=True)}", moment.replace(microsecond=0)
    elif shape == "ruby-nanos":
        text, expected = f"{base}.{moment.microsecond:06d}789 {_offset_text(moment, colon=True)}", moment
    elif shape == "soup":
        text, expected = f"{base} {_offset_text(moment, colon=False)}", moment.replace(microsecond=0)
    elif shape == "iso":
        text, expected = moment.isoformat(), moment
    else:
        utc = moment.astimezone(UTC)
        text, expected = utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment
    parsed = parse_date(text, offset(7))
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset() or shape == "iso-z"


@given(st.text(max_size=40))
def test_any_text_gives_an_aware_datetime_or_a_value_error(text: str) -> None:
    try:
        parsed = parse_date(text, UTC)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert parsed.tzinfo is not None and parsed.utcoffset() is not None
