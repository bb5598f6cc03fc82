"""Turn the figures the reliability tests recorded (`tests.figures.record_figure`) into the table
of docs/RELIABILITY.md: the faults injected, the inputs tried and the load held, with what was
lost. `make figures` runs the tests and then this:

    python -m tests.figures_table FIGURES.jsonl docs/RELIABILITY.md

The headline says "nothing lost" only when every row reported its losses and every one was 0; a
row that lost something is shown in bold with its number, and a row that reported no `lost` at
all is counted as not shown, never as nothing lost.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Each kind of row, its heading, and the key that holds its count.
KINDS: tuple[tuple[str, str, str], ...] = (
    ("fault", "Faults injected", "injected"),
    ("input", "Inputs tried", "tried"),
    ("load", "Load held", "held"),
)
COMMON_KEYS = {"kind", "what", "lost", "injected", "tried", "held"}


@dataclass
class Line:
    """One kind and `what`: the rows recorded for it, summed (a test run twice counts twice)."""

    kind: str
    what: str
    count: int = 0
    lost: int = 0
    unreported: int = 0  # rows with no `lost` at all
    runs: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any], count_key: str) -> None:
        self.runs += 1
        self.count += _number(row.get(count_key))
        if "lost" in row and row["lost"] is not None:
            self.lost += _number(row["lost"])
        else:
            self.unreported += 1
        for key, value in row.items():
            if key in COMMON_KEYS:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and key != "seconds":
                self.details[key] = self.details.get(key, 0) + value
            elif key == "seconds" and isinstance(value, int | float):
                self.details[key] = max(float(self.details.get(key, 0.0)), float(value))
            else:
                self.details[key] = value


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        row = json.loads(text)
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: a figure is a JSON object")
        rows.append(row)
    return rows


def summarise(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Line]]:
    by_kind: dict[str, dict[str, Line]] = {kind: {} for kind, _, _ in KINDS}
    count_keys = {kind: key for kind, _, key in KINDS}
    for row in rows:
        kind = str(row.get("kind", ""))
        if kind not in by_kind:
            by_kind[kind] = {}
            count_keys[kind] = "count"
        what = str(row.get("what", "(not named)"))
        line = by_kind[kind].setdefault(what, Line(kind=kind, what=what))
        line.add(row, count_keys[kind])
    return {kind: list(lines.values()) for kind, lines in by_kind.items()}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _lost_cell(line: Line) -> str:
    if line.lost:
        return f"**{line.lost} lost**"
    if line.unreported:
        return f"**not reported** ({line.unreported} of {line.runs} runs)"
    return "0"


def _details(line: Line) -> str:
    shown = [f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
             for key, value in sorted(line.details.items())]
    if line.runs > 1:
        shown.append(f"{line.runs} runs")
    return _cell(", ".join(shown))


def headline(summary: Mapping[str, Sequence[Line]]) -> str:
    lines = [line for kind_lines in summary.values() for line in kind_lines]
    lost = sum(line.lost for line in lines)
    unreported = sum(line.unreported for line in lines)
    if not lines:
        return "**No figures were recorded**: the tests that record them did not run."
    parts = []
    if lost:
        parts.append(f"**{lost} lost**")
    if unreported:
        parts.append(f"**{unreported} row(s) did not report what was lost**")
    if parts:
        return "Lost: " + "; ".join(parts) + ". See the rows in bold."
    return "Lost: **nothing** (0 in every row)."


def render(rows: Iterable[Mapping[str, Any]], *, source: str = "", when: datetime | None = None) -> str:
    summary = summarise(rows)
    when = when or datetime.now(UTC)
    out = ["# Reliability: the figures", "",
           "Produced by the tests, not written by hand: `make figures` runs every test that records a "
           "figure (`tests/figures.py`) and regenerates this file with `tests/figures_table.py`.",
           f"Generated {when.strftime('%Y-%m-%d %H:%M UTC')}" + (f" from `{source}`." if source else "."),
           "", headline(summary), ""]
    headings = {kind: (title, key) for kind, title, key in KINDS}
    for kind, lines in summary.items():
        title, key = headings.get(kind, (f"Other ({kind or 'no kind'})", "count"))
        out += [f"## {title}", ""]
        if not lines:
            out += ["None recorded in this run.", ""]
            continue
        out += [f"| what | {key} | lost | details |", "|---|---:|---|---|"]
        out += [f"| {_cell(line.what)} | {line.count} | {_lost_cell(line)} | {_details(line)} |"
                for line in lines]
        total = sum(line.count for line in lines)
        lost = sum(line.lost for line in lines)
        unreported = sum(line.unreported for line in lines)
        lost_total = f"**{lost} lost**" if lost else ("**not all reported**" if unreported else "0")
        out += [f"| **total** | **{total}** | {lost_total} | |", ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m tests.figures_table FIGURES.jsonl OUTPUT.md", file=sys.stderr)
        return 2
    source, target = Path(args[0]), Path(args[1])
    text = render(read_rows(source), source=source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(headline(summarise(read_rows(source))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
