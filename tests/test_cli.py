"""The CLI: a thin shell; errors are one line and a non-zero exit; docs/cli.md matches --help."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def reference() -> str:
    parts = ["# CLI reference\n", "Generated from `publisher --help`; `tests/test_cli.py` keeps it in step",
             "(`PUBLISHER_REGEN_GOLDEN=1 make test` rewrites it).\n", "## publisher\n", "```text", _help().rstrip(), "```\n"]
    for name in sorted(main.commands):
        parts += [f"## publisher {name}\n", "```text", _help(name).rstrip(), "```\n"]
    return "\n".join(parts)


def test_the_cli_reference_matches_the_help():
    text = reference()
    if os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1":
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(text)
    assert REFERENCE.read_text() == text, "docs/cli.md is stale: PUBLISHER_REGEN_GOLDEN=1 make test rewrites it"


def test_every_command_takes_config():
    for name in main.commands:
        assert "--config PATH" in _help(name) or "--config FILE" in _help(name), name
