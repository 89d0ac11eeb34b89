"""Hugo's side of the benchmark: the same posts as Hugo content, its config, and running it.

Hugo can't run ERB, so the two helpers the corpus uses are expanded to the HTML
publisher makes of them (``by`` to a byline link, ``image_tag`` to an ``<img>``).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

BY = re.compile(r"<%= by\('([a-z0-9-]+)'\) %>")
IMAGE_TAG = re.compile(r"<%= image_tag\('([^']+)', alt: '([^']*)'\) %>")
SNIP_DATE = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d\d):?(\d\d)$")

HUGO_TOML = """\
baseURL = "{url}"
languageCode = "en"
title = "{title}"
rssLimit = {entries}
disableKinds = ["taxonomy", "term", "sitemap", "robotsTXT", "404"]

[outputs]
home = ["RSS"]
page = []
section = []

[markup.goldmark.renderer]
unsafe = true
"""


class HugoError(RuntimeError):
    """Hugo is missing and can't be installed, or a post can't be converted."""


def split_snip(text: str) -> tuple[str, dict[str, str]]:
    """A soup snip's body and its trailing ``:key: value`` attributes (as written)."""
    at = text.rfind("\n\n:")
    if at < 0:
        raise HugoError("not a soup snip: no attribute block after a blank line")
    attributes = {}
    for line in text[at + 2:].splitlines():
        key, _, value = line[1:].partition(": ")
        attributes[key] = value.strip()
    return text[:at], attributes


def hugo_date(value: str) -> str:
    """``2018-03-16 12:23:42.686103000 +00:00`` or ``2013-01-25 14:27:26 +0000`` as RFC 3339."""
    match = SNIP_DATE.match(value)
    if not match:
        raise HugoError(f"can't convert the date {value!r}")
    day, time, fraction, hours, minutes = match.groups()
    return f"{day}T{time}{'.' + fraction[:6] if fraction else ''}{hours}:{minutes}"


def expand_erb(body: str, site_url: str, asset_url: str, authors: dict[str, str]) -> str:
    """The body with ``by(...)`` and ``image_tag(...)`` replaced by the HTML publisher renders for them."""

    def byline(match: re.Match[str]) -> str:
        slug = match.group(1)
        name = authors.get(slug) or slug.replace("-", " ").title()
        return f'<span class="byline">— <a href="{site_url}{slug}">{html.escape(name)}</a></span>'

    def image(match: re.Match[str]) -> str:
        return f'<img src="{asset_url}{match.group(1)}" alt="{html.escape(match.group(2))}">'

    expanded = IMAGE_TAG.sub(image, BY.sub(byline, body))
    if "<%" in expanded:
        raise HugoError(f"an ERB tag the converter doesn't know: {expanded[expanded.index('<%'):][:60]!r}")
    return expanded


def to_hugo(text: str, site_url: str, asset_url: str, authors: dict[str, str]) -> str:
    """A soup snip as a Hugo content file: YAML front matter, then the Markdown body."""
    body, attributes = split_snip(text)
    if attributes.get("erb") == "true":
        body = expand_erb(body, site_url, asset_url, authors)
    front = [
        f"title: {json.dumps(attributes['page_title'])}",
        f"date: {hugo_date(attributes['created_at'])}",
        f"lastmod: {hugo_date(attributes.get('updated_at') or attributes['created_at'])}",
        f"author: {json.dumps(attributes.get('author', ''))}",
        f"draft: {'true' if attributes.get('draft') == 'true' else 'false'}",
    ]
    return "---\n" + "\n".join(front) + "\n---\n\n" + body + "\n"


def hugo_config(url: str, title: str, entries: int) -> str:
    return HUGO_TOML.format(url=url, title=title, entries=entries)


def ensure_hugo() -> str:
    """The path of the ``hugo`` command, installing the Debian package if it is missing."""
    found = shutil.which("hugo")
    if found:
        return found
    if _apt_install() != 0:
        subprocess.run(["apt-get", "update"], check=False)
        _apt_install()
    found = shutil.which("hugo")
    if not found:
        raise HugoError("hugo is not installed and `apt-get install -y hugo` failed; install Hugo and run again")
    return found


def _apt_install() -> int:
    print("hugo not found: running apt-get install -y hugo", flush=True)
    try:
        return subprocess.run(["apt-get", "install", "-y", "hugo"], check=False).returncode
    except OSError:
        return 1


def hugo_version(hugo: str) -> str:
    result = subprocess.run([hugo, "version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or result.stderr.strip()


def build_command(hugo: str, site: Path) -> list[str]:
    return [hugo, "--source", str(site), "--destination", str(site / "public")]


def clean(site: Path) -> None:
    """What a cold Hugo build must not find: its output and its resource cache."""
    for name in ("public", "resources"):
        shutil.rmtree(site / name, ignore_errors=True)


def rss_titles(site: Path) -> list[str]:
    """The item titles of the RSS feed Hugo wrote for the home page."""
    path = site / "public" / "index.xml"
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise HugoError(f"{path}: Hugo's RSS feed is missing or not XML ({exc})") from exc
    return [item.findtext("title") or "" for item in root.iter("item")]
