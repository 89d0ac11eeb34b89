"""The memory probe: one process sending a digest to a big list through a provider that goes nowhere.

Run by send_vs_smtp_source.py as a child (its peak RSS is read with
``os.wait4``).  ``Sender(config, store, provider=NullProvider(...)).send(digest)``
enqueues every active subscriber, then claims, "sends" and records them batch by
batch.  The null provider accepts every recipient; when the fast MIME encoder
is there (``MimeEncoder.prepare``) it also encodes every message, so the
per-message work is real.  Without ``publisher.delivery`` it falls back to the
ledger alone (enqueue, then claim and record every row).  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import send_data

BATCH = 1000


def null_provider(config: Any) -> Any:
    """A Provider that hands nothing over: every recipient is ``sent`` (after encoding, with the fast encoder)."""
    from publisher.providers.base import Provider, Result

    class NullProvider(Provider):
        type = "null"
        max_batch = BATCH

        def send(self, letter: Any, batch: Sequence[Any]) -> list[Any]:
            prepare = getattr(self.encoder, "prepare", None)
            if prepare is not None:
                prepared = prepare(letter)
                for recipient in batch:
                    prepared.encode(recipient)
            return [Result(recipient.delivery_id, "sent") for recipient in batch]

    return NullProvider(config.providers["outbox"], name="null", environ=send_data.ENVIRON)


def with_sender(config: Any, store: Any, digest_id: int) -> str:
    from publisher.delivery import Sender

    provider = null_provider(config)
    encodes = "encoding every message" if hasattr(provider.encoder, "prepare") else "no encoding (slow encoder)"
    Sender(config, store, environ=send_data.ENVIRON, provider=provider).send(digest_id)
    return f"Sender + ledger, null provider ({encodes})"


def with_ledger(store: Any, digest_id: int, domain: str) -> str:
    from publisher.ledger import Ledger
    from publisher.providers.base import Result

    ledger = Ledger(store)
    ledger.enqueue(digest_id, send_data.LIST, domain)
    while claimed := ledger.claim(digest_id, BATCH):
        ledger.record([Result(row.delivery_id, "sent") for row in claimed])
    return "ledger only (publisher.delivery not available yet): enqueue + claim/record"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="the benchmark's site folder")
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of the state database")
    parser.add_argument("--digest", type=int, required=True)
    parser.add_argument("--ledger-only", action="store_true", help="skip the Sender: enqueue, claim, record")
    args = parser.parse_args(argv)
    from publisher.state import Store

    config = send_data.make_config(args.root, database=args.database)
    store = Store(args.database)
    try:
        try:
            if args.ledger_only:
                raise ModuleNotFoundError("--ledger-only", name="publisher.delivery")
            how = with_sender(config, store, args.digest)
        except ModuleNotFoundError as exc:
            if exc.name != "publisher.delivery":
                raise
            how = with_ledger(store, args.digest, config.message_id_domain)
            how = how if not args.ledger_only else "ledger only (--ledger-only): enqueue + claim/record"
        counts = send_data.delivery_counts(store, args.digest)
    finally:
        store.close()
    print(json.dumps({"sent": counts.get("sent", 0), "counts": counts, "how": how}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
