"""Tests of the benchmark's own code: the corpus, the Hugo conversion, measuring, checks and tables.

Part of ``make test``; alone: ``.venv/bin/pytest benchmarks -q``.  The whole benchmark on a small corpus runs
only where Hugo is installed (``make bench`` installs it).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

import bench_checks
import bench_corpus
import bench_hugo
import bench_site
import build_vs_hugo
from bench_measure import CommandFailed, Run, checked, run_measured
from bench_report import Row, table

SAMPLE = [bench_corpus.make_post(7, index, 600) for index in range(600)]


# --- the corpus -----------------------------------------------------------------------------

def test_posts_are_deterministic_and_distinct():
    again = [bench_corpus.make_post(7, index, 600) for index in (0, 299, 599)]
    assert [s.text for s in again] == [SAMPLE[0].text, SAMPLE[299].text, SAMPLE[599].text]
    assert len({s.text for s in SAMPLE}) == len(SAMPLE)
    assert len({s.name for s in SAMPLE}) == len(SAMPLE)
    assert bench_corpus.make_post(8, 5, 600).text != SAMPLE[5].text


def test_sizes_look_like_the_real_corpus():
    sizes = [len(s.text.encode()) for s in SAMPLE]
    assert 3000 <= statistics.median(sizes) <= 4000
    assert max(sizes) <= 13_000
    assert sum(size > 8000 for size in sizes) >= 3


def test_the_corpus_has_every_variation():
    texts = "\n".join(s.text for s in SAMPLE)
    assert {s.folder for s in SAMPLE} == {"weeknotes", "blog"}
    assert {f":author: {slug}" in texts for slug in bench_corpus.AUTHORS} == {True}
    assert ":kind: show-and-tell" in texts and ":kind: blog" in texts
    assert re.search(r":created_at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d\d:\d\d\n", texts)
    assert re.search(r":created_at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\n", texts)
    for needle in ("<%= by('", "<%= image_tag('", ":erb: true", "| --- |", "```", "](/week-", "][ref-1]",
                   "[ref-1]: https://", "\n## ", "\n- "):
        assert needle in texts, needle
    assert 0 < sum(s.draft for s in SAMPLE) < 15


def test_publisher_reads_every_generated_post():
    from publisher.posts import read_post

    tz = ZoneInfo("Europe/London")
    posts = [read_post(s.path, s.text.encode(), 0.0, tz=tz) for s in SAMPLE]
    assert [p.title for p in posts] == [s.title for s in SAMPLE]
    assert [p.draft for p in posts] == [s.draft for s in SAMPLE]
    assert not any(p.dated_by_mtime for p in posts)
    newest = max(posts, key=lambda p: p.created_at)
    assert newest.title == SAMPLE[-1].title and not newest.draft
    assert [p.created_at for p in posts] == sorted(p.created_at for p in posts)


def test_append_sentence_goes_at_the_end_of_the_body():
    edited = bench_corpus.append_sentence(SAMPLE[3].text, "One more.")
    body, attributes = bench_hugo.split_snip(edited)
    assert body.endswith("\n\nOne more.")
    assert bench_hugo.split_snip(SAMPLE[3].text)[1] == attributes
    with pytest.raises(ValueError):
        bench_corpus.append_sentence("no attributes here", "x")


# --- the Hugo side ------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "expected"), [
    ("2018-03-16 12:23:42.686103000 +00:00", "2018-03-16T12:23:42.686103+00:00"),
    ("2013-01-25 14:27:26 +0000", "2013-01-25T14:27:26+00:00"),
    ("2013-01-25 14:27:26 -0530", "2013-01-25T14:27:26-05:30"),
])
def test_hugo_dates(written, expected):
    assert bench_hugo.hugo_date(written) == expected
    datetime.fromisoformat(expected)


def test_hugo_content_has_front_matter_and_expanded_erb():
    snip = next(s for s in SAMPLE if ":erb: true" in s.text and s.draft is False)
    converted = bench_site.to_hugo(snip.text)
    _, front, body = converted.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["title"] == snip.title and meta["draft"] is False
    assert set(meta) == {"title", "date", "lastmod", "author", "draft"}
    assert meta["lastmod"] >= meta["date"]
    assert "<%" not in body and '<span class="byline">— <a href="https://bench.example.org/' in body
    assert '<img src="https://bench.example.org/images/' in body
    assert ":page_title:" not in body


def test_unknown_erb_is_refused():
    with pytest.raises(bench_hugo.HugoError):
        bench_hugo.expand_erb("<%= link_to('x') %>", "https://a.example/", "https://a.example/i/", {})


def test_hugo_config():
    config = tomllib.loads(bench_hugo.hugo_config("https://b.example/", "T", 20))
    assert config["rssLimit"] == 20 and config["outputs"]["home"] == ["RSS"]
    assert config["markup"]["goldmark"]["renderer"]["unsafe"] is True
    assert {"taxonomy", "term", "sitemap", "robotsTXT", "404"} <= set(config["disableKinds"])


# --- the sites on disk ------------------------------------------------------------------

def test_prepare_writes_then_reuses_and_edits(tmp_path):
    corpus = bench_site.prepare(tmp_path, 120, 3)
    assert len(list((corpus.site / "posts").glob("*/*.snip.markdown"))) == 120
    assert len(list((corpus.hugo / "content" / "posts").glob("*.md"))) == 120
    first = corpus.snip_path(corpus.newest).stat().st_mtime_ns
    assert bench_site.prepare(tmp_path, 120, 3) == corpus
    assert corpus.snip_path(corpus.newest).stat().st_mtime_ns == first
    sentence = bench_site.edit_newest(corpus, "round 1")
    assert sentence in corpus.snip_path(corpus.newest).read_text()
    assert sentence in corpus.hugo_path(corpus.newest).read_text()
    bench_site.restore_newest(corpus)
    assert corpus.snip_path(corpus.newest).read_text() == corpus.newest.text
    (corpus.root / "manifest.json").unlink()
    assert bench_site.prepare(tmp_path, 120, 3) == corpus  # incomplete: made again


def test_publisher_config_is_valid(tmp_path):
    from publisher.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(bench_site.publisher_config())
    config = load_config(path)
    assert config.feeds.entries == 20 and config.feeds.formats == ["atom", "rss", "json"]
    assert config.feeds.per_kind is False and config.feeds.per_author is False
    assert config.site.url == "https://bench.example.org/"


# --- measuring ----------------------------------------------------------------------------

def test_run_measured_reports_the_child_peak_rss():
    # Measured from a small process, as build_vs_hugo.py measures: Linux counts in a child's peak RSS the memory
    # of the process that started it, until its exec (pytest's own hundreds of MiB, here).
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from bench_measure import checked, run_measured\n"
             "small = checked(run_measured([sys.executable, '-c', 'print(1)']))\n"
             "big = checked(run_measured([sys.executable, '-c', "
             "'x = bytearray(120 * 2**20); x[::4096] = b\"1\" * len(x[::4096])']))\n"
             "print(small.stdout.strip(), small.seconds > 0, small.max_rss_mib, big.max_rss_mib)")
    result = subprocess.run([sys.executable, "-c", probe, str(Path(__file__).parent)], capture_output=True, text=True,
                            check=True)
    printed, timed, small, big = result.stdout.split()
    assert (printed, timed) == ("1", "True")
    assert float(big) >= 120 > float(small)


def test_a_failing_command_raises_with_its_error_output():
    run = run_measured([sys.executable, "-c", "import sys; sys.exit('broken here')"])
    assert run.status == 1
    with pytest.raises(CommandFailed, match="broken here"):
        checked(run)


# --- checks -------------------------------------------------------------------------------

def _run(stdout: str) -> Run:
    return Run(("publisher",), 0.1, 1000, 0, stdout, "")


CHANGED = ("wrote /x/atom.xml\nbuild: 10000 scanned, 0 new, {n} changed, 0 renamed, 0 deleted, 0 errors, "
           "0 published, 1 rendered, 3 of 4 files written in 0.10s\n")


def test_summary_lines():
    fresh = bench_checks.parse_summary("build: nothing changed (10000 posts scanned) in 0.05s\n")
    assert fresh.fresh and fresh["scanned"] == 10000
    summary = bench_checks.check_one_changed(_run(CHANGED.format(n=1)))
    assert summary["changed"] == 1 and summary["written"] == 3 and summary["outputs"] == 4
    with pytest.raises(bench_checks.CheckFailed):
        bench_checks.check_one_changed(_run(CHANGED.format(n=2)))
    with pytest.raises(bench_checks.CheckFailed):
        bench_checks.check_no_change(_run(CHANGED.format(n=0)))
    with pytest.raises(bench_checks.CheckFailed):
        bench_checks.parse_summary("nothing useful")


def test_entry_checks():
    titles = {fmt: [f"t{i}" for i in range(20)] for fmt in ("atom", "rss", "json")}
    bench_checks.check_entries(titles, [f"t{i}" for i in reversed(range(20))], 20)
    with pytest.raises(bench_checks.CheckFailed, match="Hugo's RSS feed has 19"):
        bench_checks.check_entries(titles, [f"t{i}" for i in range(19)], 20)
    with pytest.raises(bench_checks.CheckFailed, match="different posts"):
        bench_checks.check_entries(titles, [f"t{i}" for i in range(1, 21)], 20)


# --- the report ---------------------------------------------------------------------------

def test_rows_and_table():
    rows = [Row("cold", 0.5, 1.0, "s", 0.5), Row("no-change", 0.2, 1.0, "s", 0.1),
            Row("peak RSS", 100.0, 100.0, "MiB", 1.0, strict=True)]
    assert [row.ok for row in rows] == [True, False, False]
    lines = table(rows).splitlines()
    assert lines[0].split(" | ")[0].strip() == "measure" and len(lines) == 5
    assert len({line.index("|") for line in lines if "|" in line}) == 1
    assert "0.500x" in lines[2] and "NO" in lines[3]


@pytest.mark.skipif(shutil.which("hugo") is None, reason="hugo is not installed")
def test_the_whole_benchmark_on_a_small_corpus(tmp_path, capsys):
    status = build_vs_hugo.main(["--posts", "150", "--reps", "2", "--cold-reps", "1", "--no-fail",
                                 "--work", str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 0, out
    assert "daemon (warm process)" in out and re.search(r"^one-changed +\| [\d.]+ s", out, re.MULTILINE)
    assert "warm-up" in err and re.search(r"^  publisher cold: [\d.]+ s$", out, re.MULTILINE)  # not measured
    newest = bench_corpus.make_post(build_vs_hugo.SEED, 149, 150)
    path = bench_site.corpus_dir(tmp_path, 150, build_vs_hugo.SEED) / "site" / "posts" / newest.path
    assert path.read_text() == newest.text  # the rounds' edits were undone
