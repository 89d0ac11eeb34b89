"""Which posts a digest carries.

A digest covers the posts *first published* in ``(since, cutoff]``, by the
``first_published_at`` the build records once per post, so a back-dated post
that appears later is sent once and an edited post is never sent again.
``since`` is the list's previous digest cutoff.  A list's first digest starts
at the cron slot before its own and also ignores posts *created* before that,
so pointing publisher at an old site does not mail its whole archive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, select

from publisher.config import Config, ListConfig
from publisher.errors import DigestError
from publisher.schema import digests, posts

log = logging.getLogger(__name__)

# How far back to look for the previous cron slot: a day, a week, a month, a year, a leap cycle.
_LOOKBACK_DAYS = (1, 8, 32, 367, 4 * 366 + 1)


@dataclass(frozen=True, slots=True)
class Window:
    """The time range a digest covers."""

    since: datetime
    cutoff: datetime
    first: bool  # the list's first digest: posts created before ``since`` are left out too


@dataclass(frozen=True, slots=True)
class Selection:
    rows: list[Any]  # posts rows, newest first, at most max_posts
    more: int  # new posts left out by max_posts


def _trigger(schedule: str, tz: ZoneInfo) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(schedule, timezone=tz)


def list_trigger(mailing_list: ListConfig) -> Any:
    """The list's cron in its timezone (what the daemon schedules the list's digest job with)."""
    return _trigger(mailing_list.schedule, mailing_list.tz)


def latest_slot(mailing_list: ListConfig, now: datetime, *, within: float | None = None) -> datetime | None:
    """The list's most recent slot at or before ``now``, looking back ``within`` seconds (default: its grace)."""
    trigger = list_trigger(mailing_list)
    window = mailing_list.grace if within is None else within
    slot, found = trigger.get_next_fire_time(None, now - timedelta(seconds=window)), None
    while slot is not None and slot <= now:
        found = slot
        slot = trigger.get_next_fire_time(slot, slot + timedelta(seconds=1))
    return found


def next_slot(schedule: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first cron slot strictly after ``after``."""
    trigger = _trigger(schedule, tz)
    fire = trigger.get_next_fire_time(None, after)
    if fire is not None and fire <= after:
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    if fire is None:
        raise ValueError(f"schedule {schedule!r} never fires after {after.isoformat()}")
    return fire


def previous_slot(schedule: str, tz: ZoneInfo, before: datetime) -> datetime:
    """The last cron slot strictly before ``before`` (searched up to four years back)."""
    trigger = _trigger(schedule, tz)
    for days in _LOOKBACK_DAYS:
        start = before - timedelta(days=days)
        last = None
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire < before:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if last is not None:
            return last
    raise ValueError(f"schedule {schedule!r} has no slot in the four years before {before.isoformat()}")


def window(conn: Connection, list_name: str, mailing_list: ListConfig, scheduled_for: datetime,
           cutoff: datetime) -> Window:
    """The window of the list's next digest: from its previous cutoff, or the cron slot before."""
    query = select(func.max(digests.c.cutoff)).where(digests.c.list == list_name)
    previous = conn.scalar(query)
    if previous is not None:
        return Window(since=previous, cutoff=cutoff, first=False)
    try:
        since = previous_slot(mailing_list.schedule, mailing_list.tz, scheduled_for)
    except ValueError as exc:
        raise DigestError(list_name, f"lists.{list_name}.schedule: {exc}; fix the cron expression") from exc
    return Window(since=since, cutoff=cutoff, first=True)


def select_posts(conn: Connection, config: Config, mailing_list: ListConfig, span: Window) -> Selection:
    """The list's posts first published in the window, newest first, at most ``max_posts``."""
    where = _conditions(config.posts.kinds, mailing_list, span)
    total = conn.scalar(select(func.count()).select_from(posts).where(*where)) or 0
    query = select(posts).where(*where).order_by(posts.c.created_at.desc(), posts.c.id.desc())
    rows = list(conn.execute(query.limit(mailing_list.max_posts)))
    return Selection(rows=rows, more=max(0, total - len(rows)))


def _conditions(site_kinds: Sequence[str], mailing_list: ListConfig, span: Window) -> list[Any]:
    where = [posts.c.error.is_(None), posts.c.deleted_at.is_(None), posts.c.draft.is_(False),
             posts.c.first_published_at > span.since, posts.c.first_published_at <= span.cutoff,
             posts.c.created_at <= span.cutoff]
    if span.first:
        where.append(posts.c.created_at > span.since)
    for column, wanted in (("kind", site_kinds), ("kind", mailing_list.kinds), ("author", mailing_list.authors)):
        if wanted:
            where.append(posts.c[column].in_(list(wanted)))
    return [and_(*where)]


def rows_by_id(conn: Connection, ids: Sequence[int]) -> list[Any]:
    """Posts rows for ``ids``, in that order (rows deleted since are left out)."""
    found = {row.id: row for row in conn.execute(select(posts).where(posts.c.id.in_(list(ids))))}
    return [found[i] for i in ids if i in found]
