"""The daemon's view of a rebuild: one warm process, ``Builder.build()`` timed in-process.

Run by build_vs_hugo.py with the project's Python, after the CLI measurements
(so the state is up to date).  It makes one Builder, as ``publisher run`` does,
builds once (forced, so the process has done a real build), then for each
repetition appends a sentence to the newest post and times a build (one post
changed), then times another build (nothing changed).  Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench_corpus import append_sentence
from bench_site import edit_sentence


def timed_build(builder: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    report = builder.build()
    return time.perf_counter() - started, report


def edit(post: Path, label: str) -> None:
    text = post.read_text(encoding="utf-8")
    post.write_text(append_sentence(text, edit_sentence(label)), encoding="utf-8")


def one_round(builder: Any, post: Path, number: int, problems: list[str]) -> tuple[float, float]:
    edit(post, f"daemon round {number}")
    changed_time, report = timed_build(builder)
    if report.fresh or report.sync.parsed != 1:
        problems.append(f"round {number}: after one edit the build re-parsed {report.sync.parsed} posts: {report.line()}")
    fresh_time, report = timed_build(builder)
    if not report.fresh or report.written:
        problems.append(f"round {number}: a build with nothing changed was not fresh: {report.line()}")
    return changed_time, fresh_time


def probe(config_path: str, post: Path, reps: int) -> dict[str, Any]:
    from publisher.build import Builder
    from publisher.config import load_config

    builder = Builder(load_config(config_path))
    problems: list[str] = []
    try:
        builder.build(force=True)
        rounds = [one_round(builder, post, number, problems) for number in range(1, reps + 1)]
    finally:
        builder.close()
    return {"one_changed": [r[0] for r in rounds], "no_change": [r[1] for r in rounds], "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--post", required=True, type=Path, help="the post file to edit (the newest)")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)
    json.dump(probe(args.config, args.post, args.reps), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
