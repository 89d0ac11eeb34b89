"""The sending benchmark's table: each figure, its target, and MET / MISSED / skipped."""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = ("measure", "figure", "target", "result", "detail")


@dataclass(frozen=True)
class Figure:
    measure: str
    value: float | None  # None: the stage was skipped or failed (see detail)
    unit: str  # "x", "msg/s", "recipients/s", "MiB"
    target: float | None = None  # None: shown for information, not judged
    at_least: bool = True  # the target is a minimum (rates, ratios) or, when False, a maximum (memory)
    detail: str = ""

    @property
    def error(self) -> bool:
        return self.value is None and self.detail.startswith("error:")

    @property
    def judged(self) -> bool:
        return self.value is not None and self.target is not None

    @property
    def met(self) -> bool:
        if not self.judged:
            return True
        assert self.value is not None and self.target is not None
        return self.value >= self.target if self.at_least else self.value <= self.target

    @property
    def result(self) -> str:
        if self.value is None:
            return "ERROR" if self.error else "skipped"
        if self.target is None:
            return "info"
        return "MET" if self.met else "MISSED"

    def cells(self) -> tuple[str, ...]:
        target = "" if self.target is None else f"{'>=' if self.at_least else '<='} {number(self.target, self.unit)}"
        figure = "-" if self.value is None else number(self.value, self.unit)
        return (self.measure, figure, target, self.result, self.detail)


def skipped(measure: str, unit: str, reason: str, target: float | None = None, at_least: bool = True) -> Figure:
    return Figure(measure, None, unit, target, at_least, f"skipped: {reason}")


def failed(measure: str, unit: str, reason: str, target: float | None = None, at_least: bool = True) -> Figure:
    return Figure(measure, None, unit, target, at_least, f"error: {reason}")


def number(value: float, unit: str) -> str:
    """A figure with its unit: ratios to 3 decimals, rates as whole numbers with separators, MiB to 1 decimal."""
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:,.0f} {unit}"


def rate(count: int, seconds: float) -> float:
    """Items per second; 0 when no time was measured."""
    return count / seconds if seconds > 0 else 0.0


def ratio(ours: float, theirs: float) -> float:
    """ours / theirs, infinite when theirs is 0 (so a broken baseline never reads as a miss)."""
    return ours / theirs if theirs > 0 else float("inf")


def table(figures: list[Figure]) -> str:
    """A plain-text table, columns padded to fit."""
    lines = [COLUMNS, *(figure.cells() for figure in figures)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(text)


def missed(figures: list[Figure]) -> list[Figure]:
    """Figures that fail the run: a target missed, or a stage that broke (not one skipped for a missing module)."""
    return [figure for figure in figures if figure.error or (figure.judged and not figure.met)]
