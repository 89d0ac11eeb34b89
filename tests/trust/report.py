"""The one table the trust suite prints: scenario, trials, messages, lost, duplicates, in doubt, errors."""

from __future__ import annotations

from dataclasses import dataclass, field

COLUMNS = ("scenario", "trials", "messages", "lost", "duplicates", "in doubt", "errors")


@dataclass
class Row:
    """One scenario's outcome.

    ``lost``: subscribers that ended neither received nor recorded failed with a reason.
    ``duplicates``: extra copies received beyond one per subscriber; ``unexplained``
    counts those NOT explained by a row the ledger reported in doubt (resent with
    the same Message-ID) — any unexplained duplicate is a failure.
    ``errors``: crashes, tracebacks, corruption, secrets found in output: anything
    the scenario says must never happen.  ``notes``: one line of context
    (inputs tried, slow-downs observed, ...).
    """

    scenario: str
    trials: int = 0
    messages: int = 0
    lost: int = 0
    duplicates: int = 0
    in_doubt: int = 0
    errors: int = 0
    unexplained: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.errors == 0 and self.unexplained == 0

    def cells(self) -> tuple[str, ...]:
        return (self.scenario, str(self.trials), str(self.messages), str(self.lost),
                f"{self.duplicates}" + (f" ({self.unexplained} unexplained)" if self.unexplained else ""),
                str(self.in_doubt), str(self.errors))


def table(rows: list[Row]) -> str:
    """A plain-text table with a verdict column and notes underneath."""
    header = (*COLUMNS, "verdict")
    body = [(*row.cells(), "ok" if row.ok else "FAILED") for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(line, widths)))
    lines = [fmt(header), fmt(tuple("-" * w for w in widths)), *(fmt(line) for line in body)]
    notes = [f"  {row.scenario}: {note}" for row in rows for note in row.notes]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))
