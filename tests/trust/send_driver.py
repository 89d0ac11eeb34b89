"""``python -m tests.trust.send_driver --config C --list L --slot ISO [--lease S] [--once]``: one sending process.

What ``publisher run`` does for a list whose slot is due (``Newsletter.run_slot``:
compose the slot's digest, or find it when already stored, then send what is
left of it), with two differences the trust suite needs:

- the slot is given, so a restart after ``kill -9`` works on the same digest
  (``publisher digest send`` picks a new slot at every start: see the crash
  scenario's notes);
- the sending lease is ``--lease`` seconds (the product's is 300 s and no
  config key or CLI option sets it).  A restart on the same host takes over a
  killed sender's lease at once anyway (the sender checks the owner's pid);
  the short lease only bounds the wait when that check can't tell.
  Everything else is the product's own code, with the real clock.

It prints ``started <pid>`` on stdout once imports are done, then logs
(INFO, to stderr) as the CLI does.  While another sender holds the lease it
waits for the lease to end and tries again (the daemon's resume sweep does the
same, every minute); with ``--once`` it reports the holder and exits 3.
Exit status: 0 when the digest is finished, 2 when rows are left waiting.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.trust.send_driver")
    parser.add_argument("--config", required=True)
    parser.add_argument("--list", dest="list_name", required=True)
    parser.add_argument("--slot", required=True, help="the list's slot, ISO 8601 with offset")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--once", action="store_true", help="report another holder and exit instead of waiting")
    args = parser.parse_args(argv)

    from publisher.cli import _setup_logging
    from publisher.config import load_config
    from publisher.delivery import Sender
    from publisher.newsletter import Newsletter
    from publisher.state import Store

    config = load_config(args.config)
    _setup_logging("INFO")
    store = Store(config.database_url)
    store.migrate()
    newsletter = Newsletter(config, store)
    def short_lease_sender() -> Sender:
        return Sender(config, store, clock=newsletter.clock, environ=os.environ, lease_seconds=args.lease)

    newsletter.sender = short_lease_sender  # type: ignore[method-assign]
    slot = datetime.fromisoformat(args.slot)
    print(f"started {os.getpid()}", flush=True)
    while True:
        outcome = newsletter.run_slot(args.list_name, slot)
        report = outcome.report
        logging.getLogger("publisher").info("%s", outcome.line())
        if report is None or report.held_by is None:
            break
        if args.once:
            return 3
        wait = (report.held_until - newsletter.clock.now()).total_seconds() if report.held_until else args.lease
        time.sleep(min(max(wait, 0.0) + 0.05, args.lease + 1))
    store.close()
    return 0 if report is not None and report.finished else 2


if __name__ == "__main__":
    sys.exit(main())
