"""The benchmark's figures: each measured in the run that reports it, with the machine's load
average (1 minute) when its measurement began and ended, and the cap it was measured under.

A figure that reached its cap is shown as "> cap"; one that could not be measured says why
("not available on this build", "failed: ..."), never a number from elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.procstat import cpu_count, load_average


@dataclass
class Figure:
    key: str
    what: str
    unit: str
    value: float | None = None
    cap: float | None = None
    capped: bool = False
    load: tuple[float, float] | None = None
    note: str = ""
    target: str = ""
    # Why there is no value: not available on this build, failed, skipped.
    missing: str = ""

    def shown(self) -> str:
        if self.missing:
            return self.missing
        if self.value is None:
            return "n/a"
        if self.capped and self.cap is not None:
            return f"> {_number(self.cap)} {self.unit} (cap)".replace("  ", " ")
        return f"{_number(self.value)} {self.unit}".strip()

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


class Measuring:
    """Load average at the start and the end of one figure's measurement."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.start = load_average()

    def done(self, value: float | None, *, capped: bool = False, note: str = "") -> Figure:
        self.figure.value = value
        self.figure.capped = capped
        self.figure.load = (round(self.start, 2), round(load_average(), 2))
        if note:
            self.figure.note = note
        return self.figure


@dataclass
class ConfigResult:
    """One configuration's figures (a number of cases on one database and system)."""

    name: str
    n: int
    db: str
    system: str
    cpus: int = field(default_factory=cpu_count)
    build: str = ""
    available: bool = True
    reason: str = ""
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def figure(self, key: str) -> Figure | None:
        return next((figure for figure in self.figures if figure.key == key), None)

    def as_json(self) -> dict[str, Any]:
        return {**{name: value for name, value in asdict(self).items() if name != "figures"},
                "figures": [figure.as_json() for figure in self.figures]}
