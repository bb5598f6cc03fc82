"""Writes a report's files into one folder: `report.md`, `report.html`, the charts under `charts/`
and, when asked, `cases.csv`. Used by `sbu report` and by the yearly report's flow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.reporting import ReportFigures
from tasks.reports import charts, documents

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """What a report wrote, each path inside `folder`."""

    folder: Path
    markdown: Path
    html: Path
    charts: tuple[Path, ...]
    csv: Path | None

    @property
    def every_file(self) -> tuple[Path, ...]:
        return (self.markdown, self.html, *((self.csv,) if self.csv else ()), *self.charts)

    def as_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "markdown": str(self.markdown), "html": str(self.html),
                "csv": str(self.csv) if self.csv else None, "charts": [str(path) for path in self.charts]}


def default_folder(data_dir: Path, figures: ReportFigures) -> Path:
    """Where a report goes unless told otherwise: `<data dir>/reports/<from>_<to>/`."""
    return data_dir / "reports" / figures.period.label


def write_report(figures: ReportFigures, *, folder: Path, with_csv: bool,
                 progress: Progress | None = None) -> ReportFiles:
    """Draw the charts and write the documents into `folder` (made if missing; files of an
    earlier report of the same name are replaced). `progress` is told what is being done."""
    say = progress or (lambda _message: None)
    chart_dir = folder / "charts"
    timelines = {timeline.case_ref: f"charts/timeline-{timeline.case_ref}.png"
                 for timeline in figures.timelines}
    total = 2 + len(figures.timelines)
    say(f"drawing chart 1 of {total}: timeliness per step")
    drawn = [charts.timeliness_chart(figures.timeliness, chart_dir / "timeliness.png")]
    say(f"drawing chart 2 of {total}: open actions by age")
    drawn.append(charts.action_age_chart(figures.action_ages, chart_dir / "action-ages.png"))
    for number, timeline in enumerate(figures.timelines, start=3):
        say(f"drawing chart {number} of {total}: timeline of {timeline.case_ref}")
        drawn.append(charts.timeline_chart(timeline, as_of=figures.as_of,
                                           path=folder / timelines[timeline.case_ref]))
    say("writing report.md and report.html")
    context = documents.report_context(
        figures, charts={"timeliness": "charts/timeliness.png", "action_ages": "charts/action-ages.png"},
        timelines=timelines)
    markdown = folder / "report.md"
    markdown.write_text(documents.render_markdown(context), encoding="utf-8")
    html = folder / "report.html"
    html.write_text(documents.render_html(context), encoding="utf-8")
    csv_path = None
    if with_csv:
        say("writing cases.csv")
        csv_path = folder / "cases.csv"
        csv_path.write_text(documents.render_csv(figures), encoding="utf-8")
    return ReportFiles(folder=folder, markdown=markdown, html=html, charts=tuple(drawn), csv=csv_path)
