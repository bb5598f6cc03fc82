"""The report's charts as PNG files, drawn with matplotlib's Agg backend.

matplotlib is imported inside each function: it costs a second or more to import, and only the
report needs it (not `sbu status`, not a case's flow run). Each chart is a `Figure` of its own on
an Agg canvas rather than through `pyplot`, so no global state or GUI backend is involved and a
figure is freed when the function returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from models.reporting import CaseTimeline, StepTimeliness, Tally, Timing

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colours a reader with the commoner colour-vision deficiencies can still tell apart, each with a
# marker or hatch of its own too.
COLOURS: dict[Timing, str] = {
    Timing.ON_TIME: "#1b7837",
    Timing.LATE: "#e08214",
    Timing.OPEN_OVERDUE: "#b2182b",
    Timing.OPEN: "#92c5de",
}
LABELS: dict[Timing, str] = {
    Timing.ON_TIME: "done on time",
    Timing.LATE: "done late",
    Timing.OPEN_OVERDUE: "open, overdue",
    Timing.OPEN: "open, not yet due",
}
DPI = 100


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _day_number(day: date) -> float:
    """Where `day` sits on a matplotlib date axis."""
    from matplotlib.dates import date2num

    return float(date2num(day))  # type: ignore[no-untyped-call]  # matplotlib.dates is untyped


def _nothing(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def timeliness_chart(rows: Sequence[StepTimeliness], path: Path) -> Path:
    """One bar per step: its items done on time, done late, open and overdue, open and not yet due."""
    figure = _figure(10, max(3.0, 0.42 * len(rows) + 1.6))
    axes = figure.add_subplot()
    axes.set_title("Timeliness per step")
    if not rows:
        _nothing(axes, "No steps in the cases counted")
        return _save(figure, path)
    positions = list(range(len(rows)))
    left = [0] * len(rows)
    for timing, field, hatch in ((Timing.ON_TIME, "on_time", ""), (Timing.LATE, "late", "//"),
                                 (Timing.OPEN_OVERDUE, "open_overdue", "xx"), (Timing.OPEN, "open", "")):
        values = [int(getattr(row, field)) for row in rows]
        axes.barh(positions, values, left=left, color=COLOURS[timing], hatch=hatch, edgecolor="white",
                  label=LABELS[timing])
        left = [before + value for before, value in zip(left, values, strict=True)]
    axes.set_yticks(positions, [row.step for row in rows])
    axes.invert_yaxis()
    axes.set_xlim(0, max(*left, 1) * 1.06)  # the longest bar short of the frame
    axes.set_xlabel("items")
    axes.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    axes.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def action_age_chart(ages: Tally, path: Path) -> Path:
    """How many open actions have been on the plan for how long (working days since added)."""
    figure = _figure(7, 3.6)
    axes = figure.add_subplot()
    axes.set_title("Open actions by age")
    if not any(count for _, count in ages):
        _nothing(axes, "No open actions in the cases counted")
        return _save(figure, path)
    labels = [label for label, _ in ages]
    counts = [count for _, count in ages]
    bars = axes.bar(labels, counts, color="#4393c3")
    axes.bar_label(bars)
    axes.margins(y=0.15)  # room for the counts above the bars
    axes.set_xlabel("working days since the action was added")
    axes.set_ylabel("open actions")
    axes.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    return _save(figure, path)


def timeline_chart(timeline: CaseTimeline, *, as_of: date, path: Path) -> Path:
    """Each item of one case: a bar from its anchor date to its due date, a circle where it was
    done on time, a cross where it was done late; late and overdue bars in their colours."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    bars = timeline.bars
    figure = _figure(11, max(3.0, 0.36 * len(bars) + 1.8))
    axes = figure.add_subplot()
    axes.set_title(f"{timeline.case_ref}: each item from its anchor date to its due date")
    if not bars:
        _nothing(axes, "No items")
        return _save(figure, path)
    for row, bar in enumerate(bars):
        start, end = sorted((bar.anchor_on, bar.due))
        # An item due on its anchor date still gets a sliver, so it shows.
        width = max((end - start).days, 0.4)
        colour = COLOURS[bar.timing] if bar.timing in (Timing.LATE, Timing.OPEN_OVERDUE) else "#b8d4e8"
        axes.barh(row, width, left=_day_number(start), color=colour, alpha=0.75, edgecolor="#555555",
                  linewidth=0.5)
        axes.plot(_day_number(bar.due), row, marker="|", markersize=14, color="#222222")
        if bar.done_on is not None:
            late = bar.timing is Timing.LATE
            axes.plot(_day_number(bar.done_on), row, marker="X" if late else "o", markersize=8,
                      color=COLOURS[Timing.LATE if late else Timing.ON_TIME], markeredgecolor="black")
    axes.axvline(_day_number(as_of), color="#555555", linestyle="--", linewidth=1)
    axes.set_yticks(list(range(len(bars))), [bar.label for bar in bars], fontsize="small")
    axes.invert_yaxis()
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.legend(handles=[
        Patch(color="#b8d4e8", alpha=0.75, label="from anchor date to due date"),
        Patch(color=COLOURS[Timing.LATE], alpha=0.75, label="item done late"),
        Patch(color=COLOURS[Timing.OPEN_OVERDUE], alpha=0.75, label="item open, overdue"),
        Line2D([], [], marker="|", linestyle="", markersize=12, color="#222222", label="due date"),
        Line2D([], [], marker="o", linestyle="", color=COLOURS[Timing.ON_TIME], markeredgecolor="black",
               label="day done, on time"),
        Line2D([], [], marker="X", linestyle="", color=COLOURS[Timing.LATE], markeredgecolor="black",
               label="day done, late"),
        Line2D([], [], linestyle="--", color="#555555", label=f"report date ({as_of.isoformat()})"),
    ], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return _save(figure, path)
