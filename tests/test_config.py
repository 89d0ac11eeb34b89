"""Config: strict models, every problem reported with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.config import load_config, parse_duration
from publisher.errors import ConfigError

MINIMAL = """
[site]
title = "T"
url = "https://example.org"

[posts]
root = "posts"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_minimal_config_gets_defaults_and_paths_relative_to_the_file(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site.url == "https://example.org/"
    assert config.posts_root == tmp_path / "posts"
    assert config.output_dir == tmp_path / "public" / "feeds"
    assert config.database_url == f"sqlite:///{tmp_path / 'state' / 'publisher.db'}"
    assert config.feeds_url == "https://example.org/feeds/"
    assert config.feeds.entries == 20
    assert config.feeds.formats == ["atom", "rss", "json"]
    assert config.build_interval == 300


def test_the_shipped_config_is_valid():
    config = load_config(Path(__file__).resolve().parents[1] / "config.toml")
    assert config.posts_root.is_dir()
    assert config.site.tz.key == "Europe/London"


def test_every_bad_key_is_reported_with_its_path(tmp_path):
    found = problems(tmp_path, MINIMAL.replace('root = "posts"', 'root = "posts"\nfolder = ["a"]') + """
[feeds]
entries = 0
formats = ["atom", "xml"]
entry_id = "{name}"
[bogus]
x = 1
""")
    assert "posts.folder: unknown key; did you mean 'folders'?" in found
    assert any(p.startswith("feeds.entries: ") and "1" in p for p in found)
    assert any(p.startswith("feeds.formats.1: ") for p in found)
    assert any(p.startswith("feeds.entry_id: must make a URI") for p in found)
    assert any(p.startswith("bogus: unknown key") for p in found)
    assert len(found) == 5


def test_missing_required_keys(tmp_path):
    found = problems(tmp_path, "[site]\ntitle = 'x'\n")
    assert "site.url: required key is missing" in found
    assert "posts: required key is missing" in found


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('[site]\ntitle="T"\nurl="example.org"\n[posts]\nroot="p"', "site.url: must be an absolute http(s) URL"),
        ('[site]\ntitle="T"\nurl="https://x.org"\ntimezone="Mars/Base"\n[posts]\nroot="p"', "site.timezone: unknown timezone"),
        ('[site]\ntitle="T"\nurl="https://x.org"\npost_url="/{nme}"\n[posts]\nroot="p"', "site.post_url: unknown placeholder {nme}"),
        ('[site]\ntitle="T"\nurl="https://x.org"\n[posts]\nroot="p"\nfolders=["../up"]', "posts.folders: "),
        (MINIMAL + '[schedule]\nbuild_every="5 minutes"', "schedule.build_every: '5 minutes' is not a duration"),
        (MINIMAL + '[schedule]\nbuild_cron="not a cron"', "schedule.build_cron: "),
        (MINIMAL + '[schedule]\nbuild_cron="* * * * *"\nbuild_every=60', "schedule: set build_every or build_cron, not both"),
        (MINIMAL + '[feeds]\nper_kind="yes"', "feeds.per_kind: "),
        (MINIMAL + '[feeds]\nentry_id="tag:{domain},{date}:/{nope}"', "feeds.entry_id: unknown placeholder {nope}"),
        (MINIMAL + '[render]\nsummary="all"', "render.summary: "),
    ],
)
def test_each_bad_value_names_its_key(tmp_path, snippet, expected):
    assert any(p.startswith(expected) for p in problems(tmp_path, snippet)), problems(tmp_path, snippet)


def test_not_toml_is_one_clear_problem(tmp_path):
    found = problems(tmp_path, "[site\n")
    assert len(found) == 1 and found[0].startswith("not valid TOML")


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml: file not found" in str(info.value)
    assert "--config" in str(info.value)


def test_error_message_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[site]\n"))
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "config.toml"))


@pytest.mark.parametrize(("value", "seconds"), [(300, 300), ("300", 300), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400)])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["0", "-5", "5 minutes", "m", ""])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)
