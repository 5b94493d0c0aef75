"""What a benchmark section returns, and how it is printed (plain-text tables) and saved (JSON)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """One block of the benchmark: a printed table plus the raw records for the JSON."""

    name: str
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None  # reason, when the section could not run

    def add(self, row: list[str], record: dict[str, Any]) -> None:
        self.rows.append(row)
        self.records.append(record)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "headers": self.headers, "rows": self.rows, "records": self.records,
                "notes": self.notes, "seconds": round(self.seconds, 1), "skipped": self.skipped}


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    """A number for a table cell; "n/a" for None/NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def fmt_paired(paired: tuple[float, float, float] | None, missing: str = "n/a") -> str:
    """A paired ratio (median, q25, q75) as ``1.16x (1.12-1.17)``."""
    if paired is None:
        return missing
    return f"{paired[0]:.2f}x ({paired[1]:.2f}-{paired[2]:.2f})"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
        return None
    return a / b


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned numbers, a rule under the header."""
    if not rows:
        return "(no rows)"
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        parts = [str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def render(section: Section) -> str:
    head = f"== {section.title} ({section.seconds:.0f} s) =="
    if section.skipped:
        return f"{head}\nskipped: {section.skipped}"
    out = [head, table(section.headers, section.rows)]
    out += [f"  note: {n}" for n in section.notes]
    return "\n".join(out)


def markdown(section: Section) -> str:
    """The same table as GitHub markdown (for docs/performance.md)."""
    if section.skipped or not section.rows:
        return f"*{section.title}: skipped ({section.skipped})*"
    lines = ["| " + " | ".join(section.headers) + " |", "|" + "|".join("---" for _ in section.headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in section.rows]
    return "\n".join(lines)
