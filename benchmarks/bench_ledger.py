"""The delivery ledger's own costs, apart from any provider: enqueue memory and claim+record time.

    .venv/bin/python benchmarks/bench_ledger.py                       # 1,000,000 subscribers
    .venv/bin/python benchmarks/bench_ledger.py --subscribers 100000 --batch 500

Prints, for a list of N active subscribers in a fresh SQLite state database:
- enqueue: the time of ``Ledger.enqueue`` and the peak RSS of a process that only imports publisher,
  opens the database and enqueues (measured with ``os.wait4`` on a child process);
- claim+record: milliseconds per 1,000 messages for ``claim(batch)`` then ``record(all sent)``, with the
  store's ``synchronous=NORMAL`` and with ``durable=True`` (``synchronous=FULL``: an fsync per commit),
  over the first ``--sample`` messages.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def make_database(path: Path, subscribers: int) -> None:
    """A migrated database with ``subscribers`` active subscribers of list 'bench' and one composed digest."""
    from publisher.state import Store

    store = Store(f"sqlite:///{path}")
    store.migrate()
    stamp = "2026-01-05 09:00:00.000000"
    with store.begin() as conn:
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO subscribers (id, email, name, secret, created_at, updated_at) "
            "SELECT i, 'reader' || i || '@example.org', 'Reader ' || i, lower(hex(randomblob(16))), ?, ? FROM n",
            (subscribers, stamp, stamp))
        conn.exec_driver_sql(
            "INSERT INTO subscriptions (subscriber_id, list, status, created_at, status_at, soft_bounces) "
            "SELECT id, 'bench', 'active', ?, ?, 0 FROM subscribers", (stamp, stamp))
        conn.exec_driver_sql(
            "INSERT INTO digests (id, list, scheduled_for, cutoff, post_ids, subject, html, text, status, "
            "recipients, created_at) VALUES (1, 'bench', ?, ?, '[]', 'Bench', '<p>hi</p>', 'hi', 'composed', 0, ?)",
            (stamp, stamp, stamp))
    store.close()


def child_enqueue(path: Path) -> None:
    from publisher.clock import FrozenClock
    from publisher.ledger import Ledger
    from publisher.state import Store

    store = Store(f"sqlite:///{path}", clock=FrozenClock(NOW))
    started = time.perf_counter()
    added = Ledger(store).enqueue(1, "bench", "bench.example.org")
    print(f"{added} {time.perf_counter() - started:.3f}")


def measure_enqueue(path: Path) -> tuple[int, float, float]:
    process = subprocess.Popen([sys.executable, __file__, "--child-enqueue", str(path)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"enqueue child failed ({status})")
    added, seconds = out.split()
    return int(added), float(seconds), usage.ru_maxrss / 1024


def measure_claim_record(path: Path, batch: int, sample: int, durable: bool) -> float:
    """Milliseconds per 1,000 messages for claim + record(all sent)."""
    from publisher.clock import FrozenClock
    from publisher.ledger import Ledger
    from publisher.providers.base import Result
    from publisher.state import Store

    store = Store(f"sqlite:///{path}", clock=FrozenClock(NOW))
    ledger = Ledger(store, durable=durable)
    done, spent = 0, 0.0
    while done < sample:
        started = time.perf_counter()
        claimed = ledger.claim(1, batch)
        if not claimed:
            break
        ledger.record([Result(row.delivery_id, "sent", provider_id=f"p{row.delivery_id}") for row in claimed])
        spent += time.perf_counter() - started
        done += len(claimed)
    store.close()
    return spent / done * 1000 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--sample", type=int, default=100_000, help="messages claimed and recorded per setting")
    parser.add_argument("--child-enqueue", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_enqueue:
        child_enqueue(args.child_enqueue)
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = Path(tmp) / "ledger.db"
        started = time.perf_counter()
        make_database(path, args.subscribers)
        print(f"setup: {args.subscribers:,} subscribers in {time.perf_counter() - started:.1f}s")
        added, seconds, rss = measure_enqueue(path)
        print(f"enqueue: {added:,} deliveries in {seconds:.2f}s ({added / seconds:,.0f} rows/s), "
              f"peak RSS of the enqueuing process {rss:.1f} MB")
        half = min(args.sample, added // 2)
        for durable in (False, True):
            cost = measure_claim_record(path, args.batch, half, durable)
            label = "synchronous=FULL (durable=True)" if durable else "synchronous=NORMAL (default)"
            print(f"claim+record, batches of {args.batch}, {label}: {cost:.1f} ms per 1,000 messages "
                  f"({1_000_000 / cost:,.0f} msg/s of ledger alone)")


if __name__ == "__main__":
    main()
