"""Reading the dates that posts carry, in every shape the corpus (and front matter) uses.

Accepted text shapes (all case-insensitive for ``T``/``Z``)::

    2018-03-16 12:23:42.686103000 +00:00   nanoseconds are truncated to microseconds
    2013-01-25 14:27:26 +0000              offsets as +HHMM, +HH:MM or +HH
    2013-01-25 14:27:26.5 -05:00           any number of fraction digits
    2024-01-02T09:30:00Z                   ISO 8601 with ``T`` and ``Z``/``UTC``/``GMT``
    2024-01-02 09:30                       seconds may be left out
    2024-01-02                             a date alone means midnight

Any other ISO 8601 form that :meth:`datetime.fromisoformat` reads is accepted
too.  A time without an offset is read in the site's timezone ``tz``.  The result is
always timezone-aware.  The parser is a regular expression, not YAML's
timestamp rules (YAML does not accept ``+0000``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo

__all__ = ["DATE_SHAPE", "parse_date"]

#: What the error messages suggest writing.
DATE_SHAPE = "YYYY-MM-DD HH:MM:SS +HH:MM (e.g. 2024-01-31 14:05:00 +00:00)"

_DATE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:[ \t]*(?:([Zz]|UTC|GMT)|([+-])(\d{2}):?(\d{2})?))?)?",
    re.ASCII,
)
# What datetime.fromisoformat is tried on: "YYYY-MM-DD", then " " or "T" and more, all in [0-9:.,+TZ -].
_ISO_SHAPE = re.compile(r"[0-9:.,+TZ -]{4}-[0-9:.,+TZ -]{5}(?:[ T][0-9:.,+TZ -]*)?")
_OFFSETS: dict[tuple[str, str, str], timezone] = {}
# The last text read, its tz and its datetime: a post's updated_at is most often its created_at.
_last: tuple[str, tzinfo, datetime] | None = None


def parse_date(value: object, tz: tzinfo) -> datetime:
    """Return ``value`` (text, date or datetime) as a timezone-aware datetime.

    Raises ValueError with a one-line message when the value is not a date or
    names a date that cannot exist (``2013-02-30``, ``25:00``).
    """
    global _last
    if value.__class__ is str:
        last = _last
        if last is not None and last[1] is tz and last[0] == value:
            return last[2]
        parsed = _parse_text(value, tz)  # type: ignore[arg-type]
        _last = (value, tz, parsed)  # type: ignore[assignment]
        return parsed
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if not isinstance(value, str):
        raise ValueError(f"expected a date like {DATE_SHAPE}, not {type(value).__name__} {_show(value)}")
    return _parse_text(value, tz)


def _parse_text(text: str, tz: tzinfo) -> datetime:
    text = text.strip()
    if _ISO_SHAPE.fullmatch(text):
        try:  # the fast path: CPython's ISO parser, ~10x quicker than the regex below
            value = datetime.fromisoformat(text)
        except ValueError:
            pass  # the regex below either reads it or explains what is wrong
        else:
            return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{_show(text)} is not a date: write it as {DATE_SHAPE}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        zone = _zone(zulu, sign, off_h, off_m, tz)
        return datetime(
            int(year), int(month), int(day),
            int(hour or 0), int(minute or 0), int(second or 0),
            int(fraction[:6].ljust(6, "0")) if fraction else 0,
            tzinfo=zone,
        )
    except ValueError as exc:
        raise ValueError(f"{_show(text)} is not a real date or time ({exc}): write it as {DATE_SHAPE}") from exc


def _zone(zulu: str | None, sign: str | None, hours: str | None, minutes: str | None, tz: tzinfo) -> tzinfo:
    """The tzinfo for a parsed offset (cached: a site has only a handful)."""
    if zulu:
        return timezone.utc
    if not sign:
        return tz
    key = (sign, hours or "00", minutes or "00")
    zone = _OFFSETS.get(key)
    if zone is None:
        h, m = int(key[1]), int(key[2])
        if h > 23 or m > 59:
            raise ValueError(f"UTC offset {sign}{key[1]}:{key[2]} is out of range")
        delta = timedelta(hours=h, minutes=m)
        zone = _OFFSETS[key] = timezone(-delta if sign == "-" else delta)
    return zone


def _show(value: object) -> str:
    """``repr`` of a value, cut short so that messages stay one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
