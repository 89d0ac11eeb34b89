"""The benchmark's tables: each measure side by side with Hugo, as a ratio against its target."""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = ("measure", "publisher", "hugo", "ratio", "target", "ok")


@dataclass(frozen=True)
class Row:
    measure: str
    ours: float
    hugo: float
    unit: str  # "s" or "MiB"
    target: float  # the largest ratio ours/hugo that meets the target
    strict: bool = False  # the ratio must be below the target, not just at most

    @property
    def ratio(self) -> float:
        return self.ours / self.hugo if self.hugo > 0 else float("inf")

    @property
    def ok(self) -> bool:
        return self.ratio < self.target if self.strict else self.ratio <= self.target

    def cells(self) -> tuple[str, ...]:
        digits = 3 if self.unit == "s" else 1
        return (self.measure, f"{self.ours:.{digits}f} {self.unit}", f"{self.hugo:.{digits}f} {self.unit}",
                f"{self.ratio:.3f}x", f"{'<' if self.strict else '<='} {self.target:.2f}x", "yes" if self.ok else "NO")

    def miss(self) -> str:
        return f"{self.measure}: {self.ratio:.3f}x of Hugo, target {'<' if self.strict else '<='} {self.target:.2f}x"


def table(rows: list[Row]) -> str:
    """A plain-text table, columns padded to fit."""
    lines = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(text)


def samples_line(label: str, values: list[float], unit: str = "s") -> str:
    return f"  {label}: " + " ".join(f"{value:.3f}" for value in values) + f" {unit}"


def misses(rows: list[Row]) -> list[str]:
    return [row.miss() for row in rows if not row.ok]
