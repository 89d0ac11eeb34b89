"""A synthetic corpus for the benchmark: a co-op's weeknotes and blog as soup snips.

Every post is made from its own seeded random generator (``seed:index``), so a
post's text depends only on the seed and its index: the corpus is the same on
every machine, and any one post can be made again alone.  Posts are numbered in
date order; the last one is the newest and is never a draft.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

AUTHORS = {
    "ana-lee": "Ana Lee",
    "sam-okafor": "Sam Okafor",
    "rowan-ash": "Rowan Ash",
    "kit-marsh": "Kit Marsh",
    "priya-nair": "Priya Nair",
    "tom-brennan": "Tom Brennan",
    "mo-haddad": "Mo Haddad",
}
FOLDERS = ("weeknotes", "blog")
FIRST_DATE = datetime(2010, 1, 4, 9, 0, tzinfo=timezone.utc)
LAST_DATE = datetime(2024, 12, 20, 17, 0, tzinfo=timezone.utc)
OFFSETS = (timedelta(0), timedelta(0), timedelta(hours=1), timedelta(hours=-5), timedelta(hours=6))
MEDIAN_BYTES = 3500
MAX_BYTES = 11_000
MIN_BYTES = 700

WORDS = """
the a and of to in we our for on with that this it was is were be have has had not but at from by as
week team work client project people some more about after before again also still just only very
time day days morning afternoon lunch meeting meetings call calls plan plans idea ideas thing things
code tests test release deploy server servers database migration bug bugs fix fixes feature features
rails ruby python gem gems library libraries app apps website site page pages feed feeds email invoice
invoices accounts budget co-op cooperative member members share shares vote votes proposal proposals
office kitchen garden bike train station cafe coffee tea cake biscuits rain sun walk trip holiday
wrote read talked paired reviewed shipped planned cleaned finished started moved tried learned
changed improved broke mended tidied measured sketched drafted answered asked helped visited joined
small large quick slow simple tricky useful odd busy quiet early late long short new old good better
careful rough gentle steady happy tired hopeful curious clear messy brief whole half next last first
retrospective standup workshop sprint backlog ticket tickets estimate estimates roadmap spreadsheet
document documents notes note diagram diagrams prototype prototypes sketch sketches design designs
question questions answer answers problem problems approach approaches pattern patterns version
server-side front-end back-end cache caches queue queues worker workers job jobs report reports
river bridge hill valley market library museum harbour field orchard workshop studio attic cellar
because although while when where which who whose whether until unless since though however
""".split()
HEADINGS = ("Lunch", "Clients", "Open source", "Money", "Meetings", "Reading", "Tools", "Next week",
            "Elsewhere", "Housekeeping", "Hiring", "Show and tell", "Things we learned", "Thanks")
DOMAINS = ("example.com", "example.net", "docs.example.org", "blog.example.io", "news.example.co.uk")
LANGUAGES = ("ruby", "python", "sh", "javascript")


@dataclass(frozen=True)
class Snip:
    """One generated post: where it goes and its text as a soup snip."""

    folder: str
    name: str
    text: str
    title: str
    draft: bool

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.name}.snip.markdown"


class _Writer:
    """Random Markdown for one post, from that post's generator."""

    def __init__(self, rng: random.Random, index: int, erb: bool):
        self.rng = rng
        self.index = index
        self.erb = erb
        self.refs: list[str] = []

    def words(self, count: int) -> list[str]:
        return self.rng.choices(WORDS, k=count)

    def sentence(self) -> str:
        words = self.words(self.rng.randint(6, 22))
        words[0] = words[0].capitalize()
        roll = self.rng.random()
        if roll < 0.12:
            words.insert(self.rng.randrange(1, len(words)), self.inline_link())
        elif roll < 0.2:
            words.insert(self.rng.randrange(1, len(words)), self.ref_link())
        elif roll < 0.28:
            words.insert(self.rng.randrange(1, len(words)), self.site_link())
        elif roll < 0.36:
            at = self.rng.randrange(1, len(words))
            words[at] = self.rng.choice(("**{}**", "*{}*", "`{}`", "_{}_")).format(words[at])
        return " ".join(words) + self.rng.choice("....?!")

    def inline_link(self) -> str:
        text = " ".join(self.words(self.rng.randint(1, 4)))
        path = "/".join(self.words(2)).replace("-", "")
        return f"[{text}](https://{self.rng.choice(DOMAINS)}/{path}-{self.rng.randrange(1000)})"

    def ref_link(self) -> str:
        label = f"ref-{len(self.refs) + 1}"
        target = f"https://{self.rng.choice(DOMAINS)}/{self.rng.choice(WORDS)}/{self.index}-{len(self.refs)}"
        self.refs.append(f"[{label}]: {target}")
        return f"[{' '.join(self.words(self.rng.randint(1, 3)))}][{label}]"

    def site_link(self) -> str:
        week = self.rng.randrange(1, self.index + 2)
        anchor = self.rng.choice(HEADINGS).lower().replace(" ", "-")
        return f"[{self.rng.choice(('last week', 'that week', 'before', 'the notes'))}](/week-{week}#{anchor})"

    def paragraph(self) -> str:
        text = " ".join(self.sentence() for _ in range(self.rng.randint(2, 6)))
        if self.erb and self.rng.random() < 0.15:
            text += f" <%= by('{self.rng.choice(list(AUTHORS))}') %>"
        return text

    def heading(self) -> str:
        return f"{self.rng.choice(('##', '##', '###'))} {self.rng.choice(HEADINGS)}"

    def bullets(self) -> str:
        marker = self.rng.choice(("-", "*", "1."))
        items = (" ".join(self.words(self.rng.randint(3, 14))) for _ in range(self.rng.randint(3, 7)))
        return "\n".join(f"{marker} {item.capitalize()}" for item in items)

    def table(self) -> str:
        rows = ["| Thing | Count | Notes |", "| --- | ---: | --- |"]
        for _ in range(self.rng.randint(3, 8)):
            rows.append(f"| {self.rng.choice(WORDS)} | {self.rng.randrange(1, 500)} | {' '.join(self.words(4))} |")
        return "\n".join(rows)

    def code(self) -> str:
        names = self.words(self.rng.randint(4, 12))
        lines = [f"    {a.replace('-', '_')} = {b.replace('-', '_')}({i})" for i, (a, b) in
                 enumerate(zip(names, names[1:]))]
        return "\n".join([f"```{self.rng.choice(LANGUAGES)}", "def step():", *lines, "```"])

    def image(self) -> str:
        folder = self.rng.choice(FOLDERS)
        alt = " ".join(self.words(self.rng.randint(2, 5))).capitalize()
        return f"<%= image_tag('{folder}/photo-{self.index}-{self.rng.randrange(100)}.jpg', alt: '{alt}') %>"

    def block(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return self.paragraph()
        if roll < 0.7:
            return self.heading()
        if roll < 0.85:
            return self.bullets()
        if roll < 0.9:
            return self.table()
        if roll < 0.95:
            return self.code()
        return self.image() if self.erb else "> " + self.sentence()

    def body(self, first: str, size: int) -> str:
        blocks = [first, self.paragraph(), self.image()] if self.erb else [first, self.paragraph()]
        total = sum(map(len, blocks))
        while total < size:
            blocks.append(self.block())
            total += len(blocks[-1]) + 2
        if self.erb:
            blocks.append(f"{self.sentence()} <%= by('{self.rng.choice(list(AUTHORS))}') %>")
        if self.refs:
            blocks.append("\n".join(self.refs))
        return "\n\n".join(blocks)


def post_size(rng: random.Random) -> int:
    """Bytes of body to aim for: log-normal around the median, a long tail up to MAX_BYTES."""
    return int(min(MAX_BYTES, max(MIN_BYTES, rng.lognormvariate(math.log(MEDIAN_BYTES * 0.86), 0.45))))


def created_at(index: int, count: int, rng: random.Random) -> datetime:
    """Evenly spread between FIRST_DATE and LAST_DATE, in order, with some jitter."""
    step = (LAST_DATE - FIRST_DATE) / max(count, 1)
    return FIRST_DATE + step * index + step * rng.uniform(0.0, 0.6)


def format_date(moment: datetime, offset: timedelta, shape: int) -> str:
    """Both shapes the real corpus uses: Ruby's YAML with fractions, and git-style +0000."""
    local = moment.astimezone(timezone(offset))
    sign, minutes = ("-" if offset < timedelta(0) else "+"), abs(int(offset.total_seconds())) // 60
    if shape == 0:
        return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond:06d}000 {sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{local:%Y-%m-%d %H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"


def make_post(seed: int, index: int, count: int) -> Snip:
    """Post number ``index`` (0 = oldest) of a corpus of ``count`` posts."""
    rng = random.Random(f"{seed}:{index}")
    folder = "weeknotes" if rng.random() < 0.45 else "blog"
    erb = rng.random() < 0.15
    writer = _Writer(rng, index, erb)
    if folder == "weeknotes":
        name, title = f"week-{index + 1}", f"Week {index + 1}"
        first = f"{title}\n{'=' * len(title)}"
    else:
        words = writer.words(rng.randint(3, 7))
        name, title = "-".join(words[:4]) + f"-{index + 1}", " ".join(words).capitalize()
        first = writer.paragraph()
    draft = index != count - 1 and rng.random() < 0.005
    attributes = _attributes(rng, index, count, folder, title, erb, draft)
    return Snip(folder, name, writer.body(first, post_size(rng)) + "\n\n" + attributes, title, draft)


def _attributes(rng: random.Random, index: int, count: int, folder: str, title: str, erb: bool, draft: bool) -> str:
    created = created_at(index, count, rng)
    updated = created + timedelta(seconds=rng.choice((0, 0, rng.randrange(60, 5 * 86400))))
    offset, shape = rng.choice(OFFSETS), rng.randrange(2)
    kind = "blog" if folder == "weeknotes" or rng.random() < 0.7 else "show-and-tell"
    lines = [":render_as: Blog", f":kind: {kind}", ":is_page: true", ":written_with: markdown",
             f":author: {rng.choice(list(AUTHORS))}", f":created_at: {format_date(created, offset, shape)}",
             f":updated_at: {format_date(updated, offset, shape)}", f":page_title: {title}"]
    if erb:
        lines.append(":erb: true")
    if draft:
        lines.append(":draft: true")
    return "\n".join(lines) + "\n"


def append_sentence(text: str, sentence: str) -> str:
    """A snip's text with ``sentence`` added as a last paragraph of its body (before the attributes)."""
    at = text.rfind("\n\n:")
    if at < 0:
        raise ValueError("not a soup snip: no attribute block after a blank line")
    return f"{text[:at]}\n\n{sentence}{text[at:]}"
