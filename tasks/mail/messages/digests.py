"""The emails about no single case, to the SBU (and the DSPs): the daily digest of open items, the
monthly progress summary of open reviews, and the yearly report written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.enums import CasePath, ReviewRoute, Role, Stage, StepState
from models.processes import STEP_RULES
from tasks.mail.checked import CaseRef, StepName, StepTitle, Subject, check_partnership
from tasks.mail.directory import Directory
from tasks.mail.rendering import EmailDraft, day_text, draft


class DigestRow(BaseModel):
    """One open item in the daily digest: a step of a case, and which of its items (`subject`, an
    agency or an action number) when the step has several.

    `title` is the step's title from its rule; leave it out for one of the procedure's own steps
    (`STEP_RULES`), whose title is looked up. A step a registered process brought must pass it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ref: CaseRef
    step: StepName
    subject: Subject | None = None
    title: StepTitle | None = None
    due: date
    state: StepState
    overdue: bool

    @model_validator(mode="after")
    def _titled(self) -> DigestRow:
        if self.title is None and self.step not in STEP_RULES:
            raise ValueError("a step outside the procedure's own needs its title")
        return self

    @property
    def item(self) -> str:
        """The item as emails name it: `step` or `step:subject`, e.g. `rr-agency-responses:police`."""
        return f"{self.step}:{self.subject}" if self.subject else str(self.step)

    @property
    def step_title(self) -> str:
        """The title given, else the procedure's own for this step."""
        return str(self.title) if self.title is not None else STEP_RULES[self.step].title


class ProgressItem(BaseModel):
    """One open item of a review in the monthly progress summary: late (`days_late` working days
    past its due date) or coming. `title` as for a `DigestRow`: the rule's, needed only for a step
    a registered process brought."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: StepName
    subject: Subject | None = None
    title: StepTitle | None = None
    due: date
    days_late: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _titled(self) -> ProgressItem:
        if self.title is None and self.step not in STEP_RULES:
            raise ValueError("a step outside the procedure's own needs its title")
        return self

    @property
    def item(self) -> str:
        return f"{self.step}:{self.subject}" if self.subject else str(self.step)

    @property
    def step_title(self) -> str:
        return str(self.title) if self.title is not None else STEP_RULES[self.step].title


class ProgressRow(BaseModel):
    """One open review in the monthly progress summary: its case's stage and route, what is late,
    what comes next, and how many more items are open after those."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ref: CaseRef
    stage: Stage
    path: CasePath | None = None
    review: ReviewRoute | None = None
    late: tuple[ProgressItem, ...] = ()
    next: tuple[ProgressItem, ...] = ()
    more: int = Field(0, ge=0)


class ReportHeadline(BaseModel):
    """The counts a report-ready email gives: nothing but numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cases: int = Field(ge=0)
    on_time: int = Field(ge=0)
    late: int = Field(ge=0)
    open_overdue: int = Field(ge=0)
    rapid_reviews: int = Field(ge=0)
    csprs: int = Field(ge=0)
    open_actions: int = Field(ge=0)


def daily_digest_email(*, day: date, rows: Sequence[DigestRow], open_cases: int, horizon_end: date,
                       directory: Directory, dashboard_url: str,
                       partnership: str = "default") -> EmailDraft:
    """To the SBU: the open items in three sections, "Overdue", "Due today" and "Due by
    `horizon_end`" (the caller counts the next five working days), each by due date, and the number
    of open cases. An item not flagged overdue but due before `day` is overdue all the same; items
    due after `horizon_end` are counted, not listed. One digest per partnership and day."""
    check_partnership(partnership)
    if horizon_end <= day:
        raise ValueError("horizon_end must be after day")
    if isinstance(open_cases, bool) or open_cases < 0:
        raise ValueError("open_cases must be a count")
    overdue: list[DigestRow] = []
    today: list[DigestRow] = []
    coming: list[DigestRow] = []
    later = 0
    for row in sorted(rows, key=lambda row: (row.due, row.case_ref, row.item)):
        if row.overdue or row.due < day:
            overdue.append(row)
        elif row.due == day:
            today.append(row)
        elif row.due <= horizon_end:
            coming.append(row)
        else:
            later += 1
    listed = [row for section in (overdue, today, coming) for row in section]
    widths = {"case_ref": max((len(row.case_ref) for row in listed), default=0),
              "item": max((len(row.item) for row in listed), default=0),
              "title": max((len(row.step_title) for row in listed), default=0)}
    sections = [{"heading": heading, "overdue": heading == "Overdue",
                 "rows": [{"case_ref": row.case_ref, "item": row.item, "step_title": row.step_title,
                           "due": row.due.isoformat(), "due_text": day_text(row.due)}
                          for row in section]}
                for heading, section in (("Overdue", overdue), ("Due today", today),
                                         (f"Due by {day_text(horizon_end)}", coming))]
    return draft(
        "daily-digest", f"daily-digest:{partnership}:{day.isoformat()}", case_ref=None,
        to=(directory.address(Role.SBU),), cc=(),
        context={"day_text": day_text(day), "horizon_text": day_text(horizon_end),
                 "dashboard_url": dashboard_url, "open_cases": open_cases,
                 "overdue_count": len(overdue), "today_count": len(today),
                 "coming_count": len(coming), "later_count": later, "open_items": len(rows),
                 "sections": sections, "widths": widths},
    )


def progress_summary_email(*, day: date, reviews: Sequence[ProgressRow], directory: Directory,
                           dashboard_url: str, partnership: str = "default") -> EmailDraft:
    """To the SBU and the three DSPs: the monthly progress summary of every open review (Rapid
    Review or CSPR) on `day`, oldest case first as given: each case's stage and route, its late
    items (with how many working days late) and what comes next. The partners' monitoring of the
    time reviews take (Regulations 2018, reg 14). One summary per partnership and month."""
    check_partnership(partnership)
    rows = [{"case_ref": row.case_ref, "stage": row.stage.value,
             "route": row.review.value if row.review else None,
             "path": row.path.value if row.path else None,
             "late": [_progress_item(item) for item in row.late],
             "next": [_progress_item(item) for item in row.next], "more": row.more}
            for row in reviews]
    return draft(
        "progress-summary", f"progress-summary:{partnership}:{day:%Y-%m}", case_ref=None,
        to=(directory.address(Role.SBU), *directory.dsps), cc=(),
        context={"day_text": day_text(day), "month_text": f"{day:%B %Y}", "reviews": rows,
                 "late_reviews": sum(1 for row in reviews if row.late), "dashboard_url": dashboard_url},
    )


def _progress_item(item: ProgressItem) -> dict[str, Any]:
    return {"item": item.item, "step_title": item.step_title, "due": item.due.isoformat(),
            "due_text": day_text(item.due), "days_late": item.days_late}


def report_ready_email(*, period_start: date, period_end: date, headline: ReportHeadline,
                       directory: Directory, dashboard_url: str, partnership: str = "default") -> EmailDraft:
    """To the SBU: the yearly report on the cases referred from `period_start` to `period_end` is
    written, under `reports/<start>_<end>/` in the pipeline's data directory, with its headline
    counts. One per partnership and period."""
    check_partnership(partnership)
    if period_end < period_start:
        raise ValueError("period_end cannot be before period_start")
    label = f"{period_start.isoformat()}_{period_end.isoformat()}"
    return draft(
        "report-ready", f"report-ready:{partnership}:{label}", case_ref=None,
        to=(directory.address(Role.SBU),), cc=(),
        context={"start_text": day_text(period_start), "end_text": day_text(period_end),
                 "folder": f"reports/{label}/", "headline": headline.model_dump(),
                 "dashboard_url": dashboard_url},
    )
