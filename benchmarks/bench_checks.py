"""Sanity checks: the builds measured did the work the benchmark says they did."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bench_measure import Run

ATOM = "{http://www.w3.org/2005/Atom}"
SUMMARY = re.compile(
    r"^build: (?P<scanned>\d+) scanned, (?P<new>\d+) new, (?P<changed>\d+) changed, (?P<renamed>\d+) renamed, "
    r"(?P<deleted>\d+) deleted, (?P<errors>\d+) errors, (?P<published>\d+) published, (?P<rendered>\d+) rendered, "
    r"(?P<written>\d+) of (?P<outputs>\d+) files written", re.MULTILINE)
FRESH = re.compile(r"^build: nothing changed \((?P<scanned>\d+) posts scanned\)", re.MULTILINE)


class CheckFailed(RuntimeError):
    """A build did not do what the benchmark measures (wrong entry count, not incremental, ...)."""


@dataclass(frozen=True)
class Summary:
    """The counts of the summary line ``publisher build`` prints."""

    fresh: bool
    counts: dict[str, int]

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)


def parse_summary(stdout: str) -> Summary:
    fresh = FRESH.search(stdout)
    if fresh:
        return Summary(True, {"scanned": int(fresh["scanned"])})
    match = SUMMARY.search(stdout)
    if not match:
        raise CheckFailed(f"no summary line ('build: ...') in the output of publisher build:\n{stdout.strip()[-500:]}")
    return Summary(False, {key: int(value) for key, value in match.groupdict().items()})


def check_cold(run: Run, posts: int) -> Summary:
    summary = parse_summary(run.stdout)
    if summary.fresh or summary["scanned"] != posts or summary["new"] != posts:
        raise CheckFailed(f"the cold build should find {posts} new posts; it printed: {_line(run)}")
    if summary["errors"]:
        warnings = [line for line in run.stderr.splitlines() if "warning" in line.lower()][:3]
        raise CheckFailed(f"the cold build rejected {summary['errors']} generated posts: " + " | ".join(warnings))
    return summary


def check_no_change(run: Run) -> Summary:
    summary = parse_summary(run.stdout)
    wrote = [line for line in run.stdout.splitlines() if line.startswith("wrote ")]
    if not summary.fresh or wrote:
        raise CheckFailed(f"a build right after a build should report nothing changed and write nothing; "
                          f"it printed: {_line(run)}")
    return summary


def check_one_changed(run: Run) -> Summary:
    summary = parse_summary(run.stdout)
    others = summary["new"] + summary["renamed"] + summary["deleted"]
    if summary.fresh or summary["changed"] != 1 or others:
        raise CheckFailed(f"after editing one post the build should re-read exactly that one; it printed: {_line(run)}")
    return summary


def _line(run: Run) -> str:
    lines = [line for line in run.stdout.splitlines() if line.startswith("build:")]
    return lines[-1] if lines else repr(run.stdout.strip()[-300:])


def our_feed_titles(feeds: Path) -> dict[str, list[str]]:
    """The entry titles of our main feed, in each format."""
    try:
        atom = ET.parse(feeds / "atom.xml").getroot()
        rss = ET.parse(feeds / "rss.xml").getroot()
        items = json.loads((feeds / "feed.json").read_text(encoding="utf-8"))["items"]
    except (OSError, ET.ParseError, ValueError, KeyError) as exc:
        raise CheckFailed(f"{feeds}: our feeds are missing or unreadable ({exc})") from exc
    return {
        "atom": [entry.findtext(f"{ATOM}title") or "" for entry in atom.iter(f"{ATOM}entry")],
        "rss": [item.findtext("title") or "" for item in rss.iter("item")],
        "json": [item.get("title", "") for item in items],
    }


def check_entries(titles: dict[str, list[str]], hugo_titles: list[str], expected: int) -> None:
    """Every feed (ours in each format, Hugo's) shows ``expected`` entries, and the same posts."""
    for name, found in {**{f"our {fmt}": t for fmt, t in titles.items()}, "Hugo's RSS": hugo_titles}.items():
        if len(found) != expected:
            raise CheckFailed(f"{name} feed has {len(found)} entries, expected {expected}")
    if sorted(titles["rss"]) != sorted(hugo_titles):
        missing = sorted(set(titles["rss"]) ^ set(hugo_titles))[:3]
        raise CheckFailed(f"our feed and Hugo's show different posts (e.g. {missing}); the builds aren't comparable")


def check_edit_published(feeds: Path, sentence: str) -> None:
    """The one-changed builds really re-rendered the edited post: its last sentence is in the Atom feed."""
    if sentence not in (feeds / "atom.xml").read_text(encoding="utf-8"):
        raise CheckFailed(f"{feeds / 'atom.xml'}: the edited post's new sentence {sentence!r} is not in the feed")
