"""What the digest templates see: posts as plain values, and the template context."""

from __future__ import annotations

import dataclasses
import html as _html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from publisher.config import Config, ListConfig
from publisher.digest.text import LinkRefs, html_to_text
from publisher.feedset import author_name
from publisher.links import post_url
from publisher.mail.letter import Placeholders

PREHEADER_LENGTH = 140
_LEADING_HEADING = re.compile(r"\A\s*<h([1-6])\b[^>]*>(.*?)</h\1>\s*", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")
_MARKER = "@@PUBLISHER:"  # a post quoting a placeholder must not receive the recipient's values


@dataclass(frozen=True, slots=True)
class DigestPost:
    """One post as a digest shows it."""

    id: int
    title: str
    url: str
    html: Markup  # the full body: absolute URLs, sanitized by the build
    summary: Markup
    author: str | None  # display name
    author_slug: str | None
    kind: str | None
    published: datetime  # in the list's timezone
    published_date: str  # "8 March 2024"
    text: str = ""  # body (or summary) as text, for the text part
    links: tuple[tuple[int, str], ...] = ()  # the (number, url) references first used in ``text``


def long_date(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def digest_post(config: Config, tz: ZoneInfo, values: Any) -> DigestPost:
    """A DigestPost from a posts row (or a mapping of one)."""
    get = values.__getitem__ if isinstance(values, dict) else values.__getattribute__
    created = get("created_at")
    published = created.astimezone(tz)
    author = get("author")
    title = get("title") or get("name") or "(untitled)"
    return DigestPost(
        id=get("id"), title=_defuse(title),
        url=post_url(config.site, name=get("name"), kind=get("kind"), author=author,
                     created=get("created_local") or created),
        html=Markup(_defuse(without_title(get("html") or "", title))),
        summary=Markup(_defuse(get("summary") or get("html") or "")),
        author=author_name(config, author) if author else None, author_slug=author, kind=get("kind"),
        published=published, published_date=long_date(published))


def without_title(html: str, title: str) -> str:
    """``html`` without a leading heading that only repeats the post's title (the digest shows the title)."""
    match = _LEADING_HEADING.match(html)
    if match and " ".join(_html.unescape(_TAG.sub("", match.group(2))).split()) == " ".join(title.split()):
        return html[match.end():]
    return html


def _defuse(text: str) -> str:
    """``text`` with any literal placeholder broken by an invisible word joiner, so personalisation leaves it alone.

    (An HTML character reference would not do: css-inline writes ``&#58;`` back as ``:``.)
    """
    return text.replace(_MARKER, _MARKER[:-1] + "\u2060:") if _MARKER in text else text


def with_text(posts: list[DigestPost], summaries_only: bool) -> list[DigestPost]:
    """The posts with ``text`` and ``links`` filled in, link numbers running through the digest."""
    refs = LinkRefs()
    result = []
    for post in posts:
        start = len(refs.numbers)
        text = _defuse(html_to_text(str(post.summary if summaries_only else post.html), refs))
        links = tuple((number, _defuse(url)) for number, url in refs.since(start))
        result.append(dataclasses.replace(post, text=text, links=links))
    return result


def preheader(posts: list[DigestPost], more: int) -> str:
    """The inbox preview line: the post titles."""
    text = " · ".join(post.title for post in posts)
    if more:
        text += f" · and {more} more"
    if len(text) > PREHEADER_LENGTH:
        text = text[: PREHEADER_LENGTH - 1].rsplit(" ", 1)[0] + "…"
    return text


def context(config: Config, list_name: str, mailing_list: ListConfig, posts: list[DigestPost], *,
            digest_id: int | None, date: datetime, web_url: str | None, summaries_only: bool = False,
            more: int = 0, subject: str = "") -> dict[str, Any]:
    """The template context (see the comment at the top of templates/digest.html.j2)."""
    local = date.astimezone(mailing_list.tz)
    web = config.web_url
    return {
        "list": {"name": list_name, "title": mailing_list.title, "description": mailing_list.description},
        "site": {"title": config.site.title, "url": config.site.url},
        "posts": posts,
        "digest": {"id": digest_id, "date": local, "date_text": long_date(local), "web_url": web_url,
                   "preheader": preheader(posts, more), "summaries_only": summaries_only, "more": more,
                   "more_url": config.site.url, "subject": subject},
        "links": {"unsubscribe": web + "unsubscribe", "preferences": web + "preferences",
                  "archive": f"{web}archive/{list_name}"},
        "recipient": Placeholders(),
    }
