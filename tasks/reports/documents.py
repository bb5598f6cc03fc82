"""The report as documents: Markdown and HTML from templates in `templates/` (HTML autoescaped),
the CSV for the national returns, and the progress summary's Markdown for its Prefect artifact.

The figures come from `models.reporting` and hold case references, step ids, rule titles, dates,
enums and counts only; the templates add nothing about a case but how to read them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.reporting import ProgressEntry, ProgressSummary, ReportFigures, Timing

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).with_name("templates")

# What the report counts, and what each figure means: printed in the report itself, Markdown and
# HTML alike, so that a reader needs nothing else to read it.
WHICH_CASES = (
    "This report counts the cases whose referral the SBU received in the period (the London date "
    "of receipt, both ends included). Each case is counted in the period of its referral, "
    "whatever year its steps fall in, so no case is counted twice across reports and every case "
    "referred in the period is here, closed or not. Its steps are counted as they stood on the "
    "report's date, including steps due after the period ended. A step cancelled because the "
    "case's path no longer needs it is not counted anywhere.")
MEANINGS: tuple[tuple[str, str], ...] = (
    ("Timeliness per step",
     "Every item of a step is counted: each agency's part of a step, each IMR, each action. Done on "
     "time: recorded as done on or before its due date. Done late: recorded as done after it. Open, "
     "overdue: not done, and its due date had passed on the report's date. Open, not yet due: not "
     "done, and not yet due. Median lateness: the median, over the items done late, of the working "
     "days from the due date to the day it was done (England and Wales working days, less the "
     "partnership's closure days), so an item due on a Friday and done on the Saturday is late by "
     "0 working days."),
    ("Cases by path",
     "The route the DSPs' decision set: a Serious Incident Notification and a Rapid Review, a "
     "notification only, a Rapid Review only, a near miss's Rapid Review, or no further action. "
     "Awaiting decision: the DSPs have not decided yet."),
    ("Cases by stage",
     "Where each case stood on the report's date: the furthest process with work still open "
     "(notification, Rapid Review, CSPR, action plan), awaiting the DSPs' decision, or closed."),
    ("Rapid Reviews converted to CSPRs",
     "Of the counted cases whose Rapid Review started, how many had a Child Safeguarding Practice "
     "Review commissioned (on the Rapid Review's recommendation or the National Panel's response), "
     "and the review route each case is on: local CSPR, no CSPR, a national review, or not yet "
     "decided."),
    ("Open actions by age",
     "Each action of a counted case's action plan that was still open on the report's date, by "
     "the working days since it was added to the plan; overdue if its due date had passed."),
    ("Timelines",
     "One chart per case: each item is a bar from the date its clock counts from (its anchor) to "
     "its due date, with a tick at the due date; a circle marks the day it was done on time, a "
     "cross the day it was done late. Late items, and open items past their due date, are "
     "coloured. A step due before its anchor (the final report, due 7 working days before the "
     "planned publication date) is drawn from its due date to its anchor. The dashed line is the "
     "report's date."),
)

CSV_COLUMNS = ("case_ref", "category", "path", "review_route", "stage", "referred", "decided",
               "sin_submitted", "rr_meeting_held", "cspr_commissioned", "published", "items_on_time",
               "items_late", "items_open")


@cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is a bug here, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["cell"] = _markdown_cell
    return environment


def _markdown_cell(value: object) -> str:
    # A Markdown table cell ends at a '|' and at a line break; a title a registered process brought
    # could hold either.
    return " ".join(str(value).split()).replace("|", "\\|")


def _day(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def report_context(figures: ReportFigures, *, charts: dict[str, str],
                   timelines: dict[str, str]) -> dict[str, Any]:
    """What the report templates are given: the figures, ready to print, and the charts' paths
    relative to the report."""
    done = figures.total(Timing.ON_TIME) + figures.total(Timing.LATE)
    conversion = figures.conversion
    return {
        "which_cases": WHICH_CASES, "meanings": MEANINGS,
        "partnership": figures.partnership,
        "start": figures.period.start.isoformat(), "end": figures.period.end.isoformat(),
        "as_of": figures.as_of.isoformat(),
        "case_refs": list(figures.case_refs),
        "totals": {"on_time": figures.total(Timing.ON_TIME), "late": figures.total(Timing.LATE),
                   "open_overdue": figures.total(Timing.OPEN_OVERDUE), "open": figures.total(Timing.OPEN),
                   "on_time_share": _percent(figures.total(Timing.ON_TIME), done)},
        "timeliness": [{"step": row.step, "title": row.title, "on_time": row.on_time, "late": row.late,
                        "open_overdue": row.open_overdue, "open": row.open,
                        "median": _median_text(row.median_days_late)}
                       for row in figures.timeliness],
        "by_path": figures.by_path, "by_stage": figures.by_stage,
        "conversion": {"rapid_reviews": conversion.rapid_reviews, "csprs": conversion.csprs,
                       "share": _percent(conversion.csprs, conversion.rapid_reviews),
                       "routes": conversion.routes},
        "action_ages": figures.action_ages,
        "open_actions": [{"case_ref": action.case_ref, "action": action.action,
                          "agency": action.agency.value if action.agency else "",
                          "added_on": action.added_on.isoformat(), "due": action.due.isoformat(),
                          "age": action.age_days, "overdue": action.overdue}
                         for action in figures.open_actions],
        "charts": charts,
        "timelines": [{"case_ref": ref, "chart": path} for ref, path in timelines.items()],
    }


def _median_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def render_markdown(context: dict[str, Any]) -> str:
    return _environment().get_template("report.md").render(context)


def render_html(context: dict[str, Any]) -> str:
    return _environment().get_template("report.html").render(context)


def render_csv(figures: ReportFigures) -> str:
    """One row per counted case, for the national returns: dates as YYYY-MM-DD, blank when the
    case has not reached that point."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in figures.cases:
        writer.writerow([
            row.case_ref, row.category.value, row.path.value if row.path else "",
            row.review.value if row.review else "", row.stage.value, _day(row.referred), _day(row.decided),
            _day(row.sin_submitted), _day(row.rr_meeting_held), _day(row.cspr_commissioned),
            _day(row.published), row.on_time, row.late, row.open])
    return buffer.getvalue()


def _entries(entries: Sequence[ProgressEntry]) -> list[dict[str, Any]]:
    return [{"item": entry.label, "title": entry.title, "due": entry.due.isoformat(),
             "days_late": entry.days_late} for entry in entries]


def render_progress_markdown(summary: ProgressSummary, *, partnership: str) -> str:
    """The monthly progress summary as Markdown, for its Prefect artifact."""
    return _environment().get_template("progress-summary.md").render({
        "partnership": partnership, "day": summary.day.isoformat(), "month": f"{summary.day:%B %Y}",
        "late_reviews": summary.late_reviews,
        "reviews": [{"case_ref": review.case_ref, "stage": review.stage.value,
                     "path": review.path.value if review.path else "",
                     "route": review.review.value if review.review else "",
                     "late": _entries(review.late), "next": _entries(review.next), "more": review.more}
                    for review in summary.reviews]})
