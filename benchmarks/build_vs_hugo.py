#!/usr/bin/env python3
"""The performance benchmark: ``publisher build`` against Hugo on the same 10,000 posts.

Measures our cold build, no-change rebuild, one-post-changed rebuild and peak
RSS, each against Hugo building its RSS feed from the same posts in the same
run, and prints RATIOS (the machine is shared and noisy: absolute times mean
little).  Every measure is the median of several runs, ours and Hugo's
interleaved.  Exit status: 0 when every target is met (or with --no-fail),
1 when one is missed, 2 when a sanity check fails and nothing can be said.

Run it as ``make bench`` (or ``.venv/bin/python benchmarks/build_vs_hugo.py``);
see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_checks
import bench_hugo
import bench_site
from bench_checks import CheckFailed
from bench_measure import CommandFailed, Run, checked, median_seconds, peak_mib, run_measured
from bench_report import Row, misses, samples_line, table

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
SEED = 20240316
TARGETS = {"cold": 0.5, "no-change": 0.1, "one-changed": 0.15, "peak RSS": 1.0}


@dataclass
class Samples:
    """Every measured run of one benchmark."""

    cold: list[Run] = field(default_factory=list)
    no_change: list[Run] = field(default_factory=list)
    one_changed: list[Run] = field(default_factory=list)
    hugo: list[Run] = field(default_factory=list)
    daemon: dict[str, Any] = field(default_factory=dict)  # bench_daemon.py's lists, and its max_rss_mib

    @property
    def ours(self) -> list[Run]:
        return self.cold + self.no_change + self.one_changed


@dataclass(frozen=True)
class Bench:
    """How to run each side on this corpus."""

    corpus: bench_site.Corpus
    hugo: str
    publisher: tuple[str, ...]

    @property
    def feeds(self) -> Path:
        return self.corpus.site / "public" / "feeds"

    def ours(self) -> Run:
        return checked(run_measured([*self.publisher, "build", "--config", str(self.corpus.config)]))

    def our_cold(self) -> Run:
        for path in self.corpus.our_outputs():
            shutil.rmtree(path, ignore_errors=True)
        run = self.ours()
        bench_checks.check_cold(run, self.corpus.posts)
        return run

    def hugo_cold(self) -> Run:
        bench_hugo.clean(self.corpus.hugo)
        run = checked(run_measured(bench_hugo.build_command(self.hugo, self.corpus.hugo)))
        found = len(bench_hugo.rss_titles(self.corpus.hugo))
        if found != bench_site.ENTRIES:
            raise CheckFailed(f"Hugo's RSS feed has {found} items, expected {bench_site.ENTRIES}")
        return run


def publisher_command() -> tuple[str, ...]:
    """The console script beside this Python (the venv's), else ``python -m publisher``."""
    script = Path(sys.executable).parent / "publisher"
    return (str(script),) if script.is_file() else (sys.executable, "-m", "publisher")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warm_up(bench: Bench) -> None:
    """One cold build of each side, not measured: "cold" means no state and no output, not an empty page cache,
    and a machine may have paged out files nobody read for a while (this one does, after about a minute)."""
    bench.hugo_cold()
    bench.our_cold()
    progress("warm-up: one cold build of each side (not measured)")


def cold_phase(bench: Bench, reps: int, samples: Samples) -> None:
    """Cold builds, ours and Hugo's in turn (who goes first alternates)."""
    for number in range(1, reps + 1):
        if number % 2:
            samples.hugo.append(bench.hugo_cold())
            samples.cold.append(bench.our_cold())
        else:
            samples.cold.append(bench.our_cold())
            samples.hugo.append(bench.hugo_cold())
        progress(f"cold {number}/{reps}: publisher {samples.cold[-1].seconds:.3f} s, "
                 f"hugo {samples.hugo[-1].seconds:.3f} s")
    titles = bench_checks.our_feed_titles(bench.feeds)
    bench_checks.check_entries(titles, bench_hugo.rss_titles(bench.corpus.hugo), bench_site.ENTRIES)


def rebuild_round(bench: Bench, number: int, samples: Samples) -> str:
    sentence = bench_site.edit_newest(bench.corpus, f"round {number}")
    samples.one_changed.append(bench.ours())
    bench_checks.check_one_changed(samples.one_changed[-1])
    samples.no_change.append(bench.ours())
    bench_checks.check_no_change(samples.no_change[-1])
    return sentence


def rebuild_phase(bench: Bench, reps: int, samples: Samples) -> None:
    """Edit the newest post, rebuild (one changed), rebuild again (no change); a Hugo cold build each round."""
    sentence = ""
    for number in range(1, reps + 1):
        if number % 2 == 0:
            samples.hugo.append(bench.hugo_cold())
        sentence = rebuild_round(bench, number, samples)
        if number % 2:
            samples.hugo.append(bench.hugo_cold())
        progress(f"rebuild {number}/{reps}: one-changed {samples.one_changed[-1].seconds:.3f} s, "
                 f"no-change {samples.no_change[-1].seconds:.3f} s, hugo {samples.hugo[-1].seconds:.3f} s")
    bench_checks.check_edit_published(bench.feeds, sentence)
    bench_checks.check_entries(bench_checks.our_feed_titles(bench.feeds),
                               bench_hugo.rss_titles(bench.corpus.hugo), bench_site.ENTRIES)


def daemon_phase(bench: Bench, reps: int, samples: Samples) -> None:
    """One warm process (bench_daemon.py) timing Builder.build() in-process."""
    corpus = bench.corpus
    argv = [sys.executable, str(HERE / "bench_daemon.py"), "--config", str(corpus.config),
            "--post", str(corpus.snip_path(corpus.newest)), "--reps", str(reps)]
    run = checked(run_measured(argv))
    samples.daemon = {**json.loads(run.stdout), "max_rss_mib": run.max_rss_mib}
    if samples.daemon["problems"]:
        raise CheckFailed("daemon probe: " + "; ".join(samples.daemon["problems"]))
    progress(f"daemon: one-changed {statistics.median(samples.daemon['one_changed']):.3f} s, "
             f"no-change {statistics.median(samples.daemon['no_change']):.3f} s (medians)")


def compile_bytecode() -> None:
    """Byte-compile publisher, as installing a package does (pip writes the .pyc files): a development
    checkout run with PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run."""
    compileall.compile_dir(HERE.parent / "publisher", quiet=1)


def run_benchmark(args: argparse.Namespace) -> tuple[Bench, Samples]:
    hugo = bench_hugo.ensure_hugo()
    compile_bytecode()
    progress(f"corpus: {args.posts} posts under {bench_site.corpus_dir(args.work, args.posts, SEED)}")
    corpus = bench_site.prepare(args.work, args.posts, SEED, fresh=args.fresh)
    bench = Bench(corpus, hugo, publisher_command())
    samples = Samples()
    try:
        warm_up(bench)
        cold_phase(bench, args.cold_reps, samples)
        rebuild_phase(bench, args.reps, samples)
        daemon_phase(bench, args.reps, samples)
    finally:
        bench_site.restore_newest(corpus)
    return bench, samples


def cli_rows(samples: Samples) -> list[Row]:
    hugo = median_seconds(samples.hugo)
    return [
        Row("cold", median_seconds(samples.cold), hugo, "s", TARGETS["cold"]),
        Row("no-change", median_seconds(samples.no_change), hugo, "s", TARGETS["no-change"]),
        Row("one-changed", median_seconds(samples.one_changed), hugo, "s", TARGETS["one-changed"]),
        Row("peak RSS", peak_mib(samples.ours), peak_mib(samples.hugo), "MiB", TARGETS["peak RSS"], strict=True),
    ]


def daemon_rows(samples: Samples) -> list[Row]:
    hugo = median_seconds(samples.hugo)
    return [
        Row("no-change", statistics.median(samples.daemon["no_change"]), hugo, "s", TARGETS["no-change"]),
        Row("one-changed", statistics.median(samples.daemon["one_changed"]), hugo, "s", TARGETS["one-changed"]),
        Row("peak RSS", samples.daemon["max_rss_mib"], peak_mib(samples.hugo), "MiB", TARGETS["peak RSS"],
            strict=True),
    ]


def machine(bench: Bench, load: tuple[float, ...]) -> str:
    now = os.getloadavg()
    return (f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()}, "
            f"{bench_hugo.hugo_version(bench.hugo)}; load average (1, 5, 15 min) at the start "
            f"{', '.join(f'{x:.2f}' for x in load)}, at the end {', '.join(f'{x:.2f}' for x in now)}")


def samples_block(samples: Samples) -> list[str]:
    return [
        "samples (wall seconds, in run order):",
        samples_line("publisher cold", [run.seconds for run in samples.cold]),
        samples_line("publisher one-changed", [run.seconds for run in samples.one_changed]),
        samples_line("publisher no-change", [run.seconds for run in samples.no_change]),
        samples_line("hugo cold", [run.seconds for run in samples.hugo]),
        samples_line("daemon one-changed", samples.daemon["one_changed"]),
        samples_line("daemon no-change", samples.daemon["no_change"]),
        samples_line("peak RSS publisher (cold)", [run.max_rss_mib for run in samples.cold], "MiB"),
        samples_line("peak RSS hugo", [run.max_rss_mib for run in samples.hugo], "MiB"),
    ]


def report(bench: Bench, samples: Samples, args: argparse.Namespace, load: tuple[float, ...]) -> str:
    stats = bench_site.corpus_stats(bench.corpus)
    return "\n".join([
        "",
        f"publisher build vs Hugo: {stats}",
        machine(bench, load),
        f"medians of {args.cold_reps} cold and {args.reps} rebuild runs of ours, {len(samples.hugo)} cold runs of "
        f"Hugo, interleaved; ratio = publisher / hugo; peak RSS = the largest ru_maxrss of any run",
        "",
        "CLI: a fresh `publisher build` process per run (cold = empty state and output folders);",
        "Hugo has no incremental build, so each of ours is compared with Hugo's cold build",
        table(cli_rows(samples)),
        "",
        "daemon (warm process): one Builder in one process, as `publisher run` keeps it; build() timed in-process;",
        "peak RSS is that whole process's; Hugo's column is its cold build again",
        table(daemon_rows(samples)),
        "",
        *samples_block(samples),
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="publisher build against Hugo on a synthetic corpus.")
    parser.add_argument("--posts", type=int, default=10_000, help="posts in the corpus (default 10000)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions of each rebuild (default 7)")
    parser.add_argument("--cold-reps", type=int, default=3, help="repetitions of the cold build (default 3)")
    parser.add_argument("--fresh", action="store_true", help="regenerate the corpus even if it exists")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target is missed")
    parser.add_argument("--work", type=Path, default=WORK, help="where the corpus is made (default benchmarks/work)")
    args = parser.parse_args(argv)
    if args.posts < 100 or args.reps < 1 or args.cold_reps < 1:
        parser.error("--posts must be at least 100, --reps and --cold-reps at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()
    try:
        bench, samples = run_benchmark(args)
    except (CheckFailed, CommandFailed, bench_hugo.HugoError) as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        return 2
    print(report(bench, samples, args, load))
    missed = misses(cli_rows(samples)) + [f"daemon {miss}" for miss in misses(daemon_rows(samples))]
    print("\nresult: " + ("every target met" if not missed else "targets MISSED: " + "; ".join(missed)))
    return 1 if missed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
