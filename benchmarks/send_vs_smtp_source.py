#!/usr/bin/env python3
"""The sending benchmark: one digest to 100,000 subscribers, over SMTP and HTTP, and peak memory.

- SMTP: ``Sender.send`` (ledger on) through the smtp provider to Postfix's
  ``smtp-sink``, beside ``smtp-source`` sending the very same message to the
  same sink with the same concurrency in the same run (before and after ours).
  Target: >= 0.6x smtp-source's messages/s.
- HTTP: the same digest through the mailgun and sendgrid providers to a local
  server (its own process): provider batches alone, and the whole Sender.
  Target: >= 150,000 recipients/s.
- Memory: peak RSS of a child process sending to 1,000,000 subscribers through
  a provider that goes nowhere.  Target: <= 150 MiB.

Exit status 0 when every target is met (or with --no-fail), 1 when one is
missed or a stage broke.  See benchmarks/SENDING.md.
"""

from __future__ import annotations

import argparse
import platform
import os
import sys
import time
from pathlib import Path

import send_postfix
import send_stages
from send_httpapi import ApiServer, MailApiServer
from send_report import Figure, failed, missed, table

HERE = Path(__file__).resolve().parent
STAGES = ("smtp", "http", "memory")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000, help="list size for SMTP and HTTP (default 100000)")
    parser.add_argument("--memory-subscribers", type=int, default=None,
                        help="list size for the memory stage (default 1000000, or 10x --subscribers when smaller)")
    parser.add_argument("--pool", type=int, default=4, help="SMTP connections, ours and smtp-source's -s (default 4)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of smtp,http,memory")
    parser.add_argument("--smtp-reps", type=int, default=2,
                        help="our SMTP sends, interleaved with smtp-source runs (one more of those); medians")
    parser.add_argument("--http-reps", type=int, default=5,
                        help="passes of the HTTP provider batches (median); the HTTP Sender runs (reps+1)//2 times")
    parser.add_argument("--http-server", choices=("bench", "mailapi"), default="bench",
                        help="bench: send_httpapi.py (lean, the default); mailapi: tests/servers/mailapi.py --count")
    parser.add_argument("--memory-timeout", type=float, default=900.0, help="seconds before the memory child is killed")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "send", help="where the databases go")
    parser.add_argument("--fresh", action="store_true", help="make the subscriber databases again")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target is missed")
    args = parser.parse_args(argv)
    args.stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    if args.memory_subscribers is None:
        args.memory_subscribers = 1_000_000 if args.subscribers >= 100_000 else 10 * args.subscribers
    return args


def run(args: argparse.Namespace) -> list[Figure]:
    if args.fresh:
        for old in args.work.glob("subscribers-*.db"):
            old.unlink()
    prepared = send_stages.prepare(args.work, args.subscribers)
    print(describe(prepared), flush=True)
    figures: list[Figure] = []
    if "smtp" in args.stages:
        figures += smtp(args, prepared)
    if "http" in args.stages:
        figures += http(prepared, args.http_server, args.http_reps)
    if "memory" in args.stages:
        figures += send_stages.memory_stage(prepared, args.memory_subscribers, args.memory_timeout)
    return figures


def smtp(args: argparse.Namespace, prepared: send_stages.Prepared) -> list[Figure]:
    try:
        tools = send_postfix.ensure_tools(args.work.parent)
    except send_postfix.PostfixError as exc:
        return [failed(measure, unit, str(exc)) for measure, unit in send_stages.SMTP_MEASURES]
    print(f"postfix tools: {tools.version()} (smtp-sink and smtp-source from {tools.root})", flush=True)
    return send_stages.smtp_stage(prepared, tools, args.pool, args.smtp_reps)


def http(prepared: send_stages.Prepared, which: str, reps: int) -> list[Figure]:
    figures: list[Figure] = []
    try:
        server = MailApiServer() if which == "mailapi" else ApiServer()
    except ModuleNotFoundError as exc:
        return [send_stages.skipped(measure, unit, f"{exc.name} not available yet", send_stages.HTTP_TARGET)
                for provider in ("mailgun", "sendgrid") for measure, unit in send_stages.http_measures(provider)]
    print(f"HTTP server: {server.name}", flush=True)
    with server:
        for provider in ("mailgun", "sendgrid"):
            figures += send_stages.http_stage(prepared, provider, server, reps)
    return figures


def describe(prepared: send_stages.Prepared) -> str:
    digest = prepared.digest
    how = digest.how + (f" ({prepared.note})" if prepared.note else "")
    return (f"{prepared.subscribers:,} subscribers; digest {digest.digest_id} {how}: "
            f"{digest.html_bytes:,} B HTML, {digest.text_bytes:,} B text")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print(f"sending benchmark on {platform.node()} ({platform.machine()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs)", flush=True)
    figures = run(args)
    print()
    print(table(figures))
    print(f"\n({time.perf_counter() - started:.0f} s in all; command: {' '.join(sys.argv)})")
    problems = missed(figures)
    for figure in problems:
        print(f"MISSED: {figure.measure}: {figure.cells()[1]} (target {figure.cells()[2]}) {figure.detail}".rstrip())
    return 1 if problems and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
