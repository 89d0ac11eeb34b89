"""Time the reading of post metadata: ``read_post`` and ``post_columns``, in microseconds per post.

::

    .venv/bin/python benchmarks/bench_parse.py                        # 10,000 generated posts, 5 runs
    .venv/bin/python benchmarks/bench_parse.py --posts /tmp/pf/site/posts --folders weeknotes blog
    .venv/bin/python benchmarks/bench_parse.py --compare ../main      # the same, beside another checkout

Each run is a fresh process (the parser remembers recurring lines, so a second
pass in one process would not be a first build's): it reads every file first,
then times one pass of ``read_post`` over all of them, then one of
``post_columns`` over the posts, keeping the results as a first build does.
Runs of the checkouts alternate; the medians (and the best run) are printed.
The machine may be shared and noisy: compare checkouts in one invocation
rather than figures from different times.  A tool, not a test: nothing fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    args = _arguments()
    if args.once:
        print(json.dumps(_one_run(args)))
        return
    roots = [HERE.parent, *(Path(root).resolve() for root in args.compare)]
    runs: dict[Path, list[dict[str, float]]] = {root: [] for root in roots}
    for _ in range(args.reps):
        for root in roots:
            runs[root].append(_run_in_child(root, args))
    posts = runs[roots[0]][0]["posts"]
    print(f"{posts:.0f} posts, {args.reps} runs each (fresh processes), microseconds per post:")
    for root, samples in runs.items():
        print(_summary(root, samples))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", help="a posts folder to read (default: generate the benchmark corpus)")
    parser.add_argument("--folders", nargs="*", default=[], help="folders of --posts to read (default: all)")
    parser.add_argument("--generate", type=int, default=10_000, help="posts to generate (default 10000)")
    parser.add_argument("--seed", type=int, default=20240316, help="seed of the generated corpus")
    parser.add_argument("--tz", default="Europe/London", help="the site's timezone")
    parser.add_argument("--reps", type=int, default=5, help="runs of each checkout (default 5)")
    parser.add_argument("--compare", nargs="*", default=[], help="other checkouts to time the same way")
    parser.add_argument("--root", help=argparse.SUPPRESS)  # the checkout a child imports publisher from
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _run_in_child(root: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--once", "--root", str(root), "--tz", args.tz,
               "--generate", str(args.generate), "--seed", str(args.seed)]
    if args.posts:
        command += ["--posts", args.posts, "--folders", *args.folders]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _one_run(args: argparse.Namespace) -> dict[str, float]:
    sys.path.insert(0, args.root)
    from zoneinfo import ZoneInfo

    from publisher.posts import read_post
    from publisher.sync import post_columns

    files = _files(args)
    tz = ZoneInfo(args.tz)
    start = time.perf_counter()
    posts = [read_post(path, data, mtime, tz=tz) for path, data, mtime in files]
    read = time.perf_counter() - start
    start = time.perf_counter()
    columns = [post_columns(post) for post in posts]
    written = time.perf_counter() - start
    assert len(columns) == len(files)
    return {"posts": len(files), "read_post": read / len(files) * 1e6, "post_columns": written / len(files) * 1e6}


def _files(args: argparse.Namespace) -> list[tuple[str, bytes, float]]:
    """``(path, bytes, mtime)`` of every post, read (or generated) before any timing."""
    if not args.posts:
        sys.path.insert(1, str(HERE))
        from bench_corpus import make_post

        snips = (make_post(args.seed, index, args.generate) for index in range(args.generate))
        return [(snip.path, snip.text.encode("utf-8"), 1_700_000_000.0) for snip in snips]
    from publisher.scan import scan_posts

    root = Path(args.posts)
    stats = scan_posts(root, args.folders)
    return [(stat.path, (root / stat.path).read_bytes(), stat.mtime_ns / 1e9) for stat in stats]


def _summary(root: Path, samples: list[dict[str, float]]) -> str:
    def median(key: str) -> float:
        return statistics.median(sample[key] for sample in samples)

    best = min(samples, key=lambda sample: sample["read_post"] + sample["post_columns"])
    return (f"  {str(root):40s} read_post {median('read_post'):6.2f}  post_columns {median('post_columns'):5.2f}  "
            f"total {median('read_post') + median('post_columns'):6.2f}  "
            f"(best run {best['read_post'] + best['post_columns']:.2f})")


if __name__ == "__main__":
    main()
