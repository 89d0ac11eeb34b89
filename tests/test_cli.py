"""The CLI: a thin shell; errors are one line and a non-zero exit; docs/cli.md matches --help."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.cli import main

from .conftest import FIXTURES, REPO

REFERENCE = REPO / "docs" / "cli.md"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "site" / "posts", tmp_path / "posts")
    shutil.copy(FIXTURES / "site" / "config.toml", tmp_path / "config.toml")
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_build_prints_what_it_wrote_and_the_discovery_tags(site):
    result = invoke("build", "--config", str(site / "config.toml"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"wrote {site / 'out' / 'atom.xml'}" in out
    assert "build: 8 scanned, 8 new" in out
    assert '<link rel="alternate" type="application/rss+xml"' in out
    assert "broken-date.snip.markdown" in result.stderr and "warning:" in result.stderr
    again = invoke("build", "--config", str(site / "config.toml"))
    assert "wrote" not in again.stdout and "nothing changed" in again.stdout


def test_check_lists_every_problem_and_exits_non_zero(site):
    (site / "posts/blog/bad-utf8.snip.markdown").write_bytes(b"caf\xe9\n\n:created_at: 2024-01-01 10:00:00 +00:00\n")
    result = invoke("check", "--config", str(site / "config.toml"))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any("broken-date.snip.markdown" in line for line in lines)
    assert any("bad-utf8.snip.markdown" in line and "UTF-8" in line for line in lines)
    assert "2 problem(s) in 9 post file(s)" in result.stderr


def test_check_passes_on_the_sample_site():
    result = invoke("check", "--config", str(REPO / "config.toml"))
    assert result.exit_code == 0, result.output
    assert "config OK" in result.stdout


def test_a_bad_config_lists_each_key_and_exits_1(tmp_path):
    (tmp_path / "config.toml").write_text('[site]\ntitle = "x"\nurl = "nope"\ncolour = "red"\n')
    result = invoke("build", "--config", str(tmp_path / "config.toml"))
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert f"error: {tmp_path / 'config.toml'}: site.url: must be an absolute http(s) URL, got 'nope'" in errors
    assert any("site.colour: unknown key" in line for line in errors)
    assert any("posts: required key is missing" in line for line in errors)
    assert "Traceback" not in result.output


def test_a_publisher_error_is_one_line_without_a_traceback(site):
    shutil.rmtree(site / "posts")
    result = subprocess.run([sys.executable, "-m", "publisher", "build", "--config", str(site / "config.toml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {site / 'posts'}: posts folder not found; check posts.root in the config"]


def test_config_comes_from_the_environment_too(site):
    result = CliRunner().invoke(main, ["build"], env={"PUBLISHER_CONFIG": str(site / "config.toml")})
    assert result.exit_code == 0 and "build: 8 scanned" in result.stdout


def _help(*command: str) -> str:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    return result.stdout.replace("Usage: main", "Usage: publisher")


def _commands(group=main, prefix: tuple[str, ...] = ()):
    """Every command path, groups first then their subcommands: ("build",), ("digest",), ("digest", "send")..."""
    for name in sorted(group.commands):
        command = group.commands[name]
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


def reference() -> str:
    parts = ["# CLI reference\n", "Generated from `publisher --help`; `tests/test_cli.py` keeps it in step",
             "(`PUBLISHER_REGEN_GOLDEN=1 make test` rewrites it).\n", "## publisher\n", "```text", _help().rstrip(), "```\n"]
    for path in _commands():
        parts += [f"## publisher {' '.join(path)}\n", "```text", _help(*path).rstrip(), "```\n"]
    return "\n".join(parts)


def test_the_cli_reference_matches_the_help():
    text = reference()
    if os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1":
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(text)
    assert REFERENCE.read_text() == text, "docs/cli.md is stale: PUBLISHER_REGEN_GOLDEN=1 make test rewrites it"


def test_every_command_takes_config():
    leaves = [path for path in _commands() if not hasattr(main.commands[path[0]], "commands") or len(path) > 1]
    assert len(leaves) >= 10
    for path in leaves:
        assert "--config PATH" in _help(*path), path


DIGEST_LIST = """
[lists.weekly]
title = "Fixture weekly"
schedule = "0 16 * * fri"
timezone = "Europe/London"
from_address = "news@fixture.example.net"
"""


@pytest.fixture
def mailing_site(site: Path, monkeypatch) -> Path:
    (site / "config.toml").write_text((site / "config.toml").read_text() + DIGEST_LIST)
    monkeypatch.setenv("PUBLISHER_SECRET", "cli-test-secret")
    return site


def test_subscribers_add_list_export_and_import(mailing_site: Path, tmp_path: Path):
    config = str(mailing_site / "config.toml")
    assert invoke("subscribers", "add", "Ada@Example.org", "--name", "Ada", "--config", config).exit_code == 0
    assert invoke("subscribers", "add", "bob@example.org", "--pending", "--config", config).exit_code == 0
    listed = invoke("subscribers", "list", "--config", config).stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["ada@example.org", "weekly", "active"],
                                                         ["bob@example.org", "weekly", "pending"]]
    export = tmp_path / "out.csv"
    assert invoke("subscribers", "export", str(export), "--config", config).exit_code == 0
    assert export.read_text().splitlines()[0].startswith("email,name,list,status")
    source = tmp_path / "in.csv"
    source.write_text("email,name\ncy@example.org,Cy\nnot-an-address,Nobody\n")
    result = invoke("subscribers", "import", str(source), "--config", config)
    assert result.exit_code == 0, result.output
    assert f"{source}:3:" in result.stderr
    assert "cy@example.org\tweekly\tactive" in invoke("subscribers", "list", "--status", "active", "--config", config).stdout


def test_subscribers_remove_keeps_the_history(mailing_site: Path):
    config = str(mailing_site / "config.toml")
    invoke("subscribers", "add", "ada@example.org", "--config", config)
    assert invoke("subscribers", "remove", "ada@example.org", "--config", config).exit_code == 0
    assert "ada@example.org\tweekly\tunsubscribed" in invoke("subscribers", "list", "--config", config).stdout


def test_a_bad_address_is_one_line_and_exit_1(mailing_site: Path):
    result = invoke("subscribers", "add", "nobody-at-all", "--config", str(mailing_site / "config.toml"))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nobody-at-all" in errors[0] and "Traceback" not in result.output


def test_digest_commands_need_a_known_list(mailing_site: Path):
    result = invoke("digest", "send", "daily", "--config", str(mailing_site / "config.toml"))
    assert result.exit_code == 1 and "lists.daily: no such list (known: weekly)" in result.stderr


def test_digest_send_then_deliveries_show_the_counts(mailing_site: Path):
    config = str(mailing_site / "config.toml")
    invoke("subscribers", "add", "ada@example.org", "--config", config)
    invoke("build", "--config", config)
    created = (datetime.now(timezone.utc) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S +00:00")
    post = mailing_site / "posts" / "weeknotes" / "today.snip.markdown"
    post.write_text(f"# Today\n\nNews.\n\n:created_at: {created}\n:kind: blog\n")
    invoke("build", "--config", config)
    dry = invoke("digest", "send", "weekly", "--dry-run", "--config", config)
    assert dry.exit_code == 0 and "1 post(s), 1 active subscriber(s); dry run, nothing sent" in dry.stdout
    assert "no digests yet" in invoke("deliveries", "--config", config).stdout
    sent = invoke("digest", "send", "weekly", "--config", config)
    assert sent.exit_code == 0 and "1 sent" in sent.stdout, sent.output
    assert len(list((mailing_site / "outbox").rglob("*.eml"))) == 1
    shown = invoke("deliveries", "--config", config)
    assert shown.exit_code == 0 and "list weekly" in shown.stdout and "1 sent, 0 queued" in shown.stdout
    again = invoke("digest", "send", "weekly", "--config", config)
    assert again.exit_code == 0 and len(list((mailing_site / "outbox").rglob("*.eml"))) == 1  # nothing twice


def test_digest_preview_with_nothing_new_says_so_and_latest_shows_the_latest(mailing_site: Path, tmp_path: Path):
    config = str(mailing_site / "config.toml")
    invoke("build", "--config", config)
    plain = invoke("digest", "preview", "weekly", "--out", str(tmp_path), "--config", config)
    assert plain.exit_code == 1 and "add --latest" in plain.stderr
    latest = invoke("digest", "preview", "weekly", "--latest", "--out", str(tmp_path), "--config", config)
    assert latest.exit_code == 0, latest.output
    assert latest.stdout.splitlines() == [str(tmp_path / f"weekly.{ext}") for ext in ("html", "txt", "eml")]
    assert "A post with front matter" in (tmp_path / "weekly.txt").read_text()
