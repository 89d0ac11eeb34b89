"""``python -m tests.trust [--quick] [--only NAME ...]``: run the trust scenarios and print one table.

Exit status 1 when any scenario failed (lost, unexplained duplicates or errors).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from .report import Row, table

# module -> the scenario functions it offers; each is ``fn(work: Path, *, quick: bool) -> list[Row]``.
SCENARIOS = {
    "crash": "tests.trust.crash",
    "faults": "tests.trust.faults",
    "storage": "tests.trust.storage",
    "daemons": "tests.trust.daemons",
    "fuzz": "tests.trust.fuzz",
    "injection": "tests.trust.injection",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.trust", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short form CI runs")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run only these scenario groups")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    started = time.monotonic()
    for name in args.only or SCENARIOS:
        module = importlib.import_module(SCENARIOS[name])
        with tempfile.TemporaryDirectory(prefix=f"trust-{name}-") as work:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows.extend(module.run(Path(work), quick=args.quick))
    print(table(rows))
    print(f"\n{len(rows)} scenarios in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
