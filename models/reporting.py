"""The figures the SBU and the partners are given: the report on the cases referred in a period
(`report_figures`), the daily digest (`digest_figures`) and the monthly progress summary of every
open review (`progress_summary`), which is how the partners monitor the time reviews take
(Regulations 2018, reg 14).

Everything is computed from the cases as the store shows them (`CaseState`) and the working-day
calendar, on a date passed in: nothing here reads the store, the clock or a file. The figures hold
case references, step ids, rule titles, dates, enums and counts only, so whatever renders them can
carry nothing else.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from models.calendar import WorkingDayCalendar
from models.enums import Agency, Anchor, CasePath, CaseStatus, Category, ReviewRoute, Stage, StepState
from models.processes.action_plan import ACTION
from models.registry import Registry
from models.schedules import Period
from models.state import CaseState, ItemState

# A count for each label, in the order a reader expects them.
Tally = tuple[tuple[str, int], ...]

AWAITING_DECISION = "awaiting-decision"  # a case with no path yet
ROUTE_UNDECIDED = "not-yet-decided"  # a Rapid Review with no recommendation yet
# How long an open action has been on the plan, in working days: each band's upper bound.
ACTION_AGE_BANDS: tuple[tuple[int | None, str], ...] = (
    (5, "0-5"), (20, "6-20"), (60, "21-60"), (None, "over 60"))
DIGEST_HORIZON_DAYS = 5
# How many of a review's coming items the progress summary lists before it counts the rest.
NEXT_ITEMS = 3
# The processes whose open items make a review open, for the progress summary.
REVIEW_PROCESSES = frozenset({"rapid-review", "cspr"})


class Timing(StrEnum):
    """Where an item stands against its due date, on the report's date."""

    ON_TIME = "on-time"
    LATE = "late"
    OPEN_OVERDUE = "open-overdue"
    OPEN = "open"  # open and not yet due
    CANCELLED = "cancelled"


def timing_of(item: ItemState, *, as_of: date) -> Timing:
    """On time: done by the end of its due date. Late: done after it. Open and overdue: not done,
    and `as_of` is after its due date (as `sbu status` counts it)."""
    match item.state:
        case StepState.DONE:
            # A done item always has its date (`CompleteItem`); were one missing it counts on time,
            # which claims nothing the record does not show.
            late = item.completed_on is not None and item.completed_on > item.due
            return Timing.LATE if late else Timing.ON_TIME
        case StepState.OPEN:
            return Timing.OPEN_OVERDUE if item.due < as_of else Timing.OPEN
        case StepState.CANCELLED:
            return Timing.CANCELLED
    raise AssertionError(f"unhandled item state {item.state!r}")


def days_late(item: ItemState, *, as_of: date, calendar: WorkingDayCalendar) -> int:
    """Working days after its due date that the item was done (or, open, that `as_of` is): the
    working days in (due, done]. A step due on a Friday and done on the Saturday is late by 0."""
    until = item.completed_on if item.state is StepState.DONE and item.completed_on else as_of
    return calendar.working_days_between(item.due, until)


# -- the report -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StepTimeliness:
    """One step's items in the counted cases (every agency's part of it, every action)."""

    step: str
    title: str
    on_time: int
    late: int
    open_overdue: int
    open: int
    # The median of how many working days the late ones were late; None when none was.
    median_days_late: float | None

    @property
    def counted(self) -> int:
        return self.on_time + self.late + self.open_overdue + self.open

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "title": self.title, "on_time": self.on_time, "late": self.late,
                "open_overdue": self.open_overdue, "open_not_due": self.open,
                "median_working_days_late": self.median_days_late}


@dataclass(frozen=True, slots=True)
class ReviewConversion:
    """Rapid Reviews started in the counted cases, and how many of those had a CSPR commissioned."""

    rapid_reviews: int
    csprs: int
    # The review route (`CaseState.review`) of the cases whose Rapid Review started.
    routes: Tally

    @property
    def rate(self) -> float | None:
        return self.csprs / self.rapid_reviews if self.rapid_reviews else None

    def as_json(self) -> dict[str, Any]:
        return {"rapid_reviews_started": self.rapid_reviews, "cspr_commissioned": self.csprs,
                "conversion_rate": self.rate, "routes": dict(self.routes)}


@dataclass(frozen=True, slots=True)
class OpenAction:
    case_ref: str
    action: str
    agency: Agency | None
    added_on: date
    due: date
    age_days: int  # working days since it was added
    overdue: bool

    def as_json(self) -> dict[str, Any]:
        return {"case_ref": self.case_ref, "action": self.action,
                "agency": self.agency.value if self.agency else None, "added_on": self.added_on.isoformat(),
                "due": self.due.isoformat(), "age_working_days": self.age_days, "overdue": self.overdue}


@dataclass(frozen=True, slots=True)
class TimelineBar:
    """One item of a case's timeline: from its anchor date to its due date, and when it was done."""

    label: str
    anchor_on: date
    due: date
    done_on: date | None
    timing: Timing

    def as_json(self) -> dict[str, Any]:
        return {"item": self.label, "anchor_on": self.anchor_on.isoformat(), "due": self.due.isoformat(),
                "done_on": self.done_on.isoformat() if self.done_on else None, "timing": self.timing.value}


@dataclass(frozen=True, slots=True)
class CaseTimeline:
    case_ref: str
    bars: tuple[TimelineBar, ...]


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One case, as the national returns ask for it."""

    case_ref: str
    category: Category
    path: CasePath | None
    review: ReviewRoute | None
    stage: Stage
    referred: date
    decided: date | None
    sin_submitted: date | None
    rr_meeting_held: date | None
    cspr_commissioned: date | None
    published: date | None
    on_time: int
    late: int
    open: int  # every open item, overdue or not

    def as_json(self) -> dict[str, Any]:
        def day(value: date | None) -> str | None:
            return value.isoformat() if value else None

        return {"case_ref": self.case_ref, "category": self.category.value,
                "path": self.path.value if self.path else None,
                "review_route": self.review.value if self.review else None, "stage": self.stage.value,
                "referred": day(self.referred), "decided": day(self.decided),
                "sin_submitted": day(self.sin_submitted), "rr_meeting_held": day(self.rr_meeting_held),
                "cspr_commissioned": day(self.cspr_commissioned), "published": day(self.published),
                "items_on_time": self.on_time, "items_late": self.late, "items_open": self.open}


@dataclass(frozen=True, slots=True)
class ReportFigures:
    """The report on the cases referred in `period`, as they stood on `as_of`."""

    partnership: str
    period: Period
    as_of: date
    timeliness: tuple[StepTimeliness, ...]
    by_path: Tally
    by_stage: Tally
    conversion: ReviewConversion
    open_actions: tuple[OpenAction, ...]
    action_ages: Tally
    timelines: tuple[CaseTimeline, ...]
    cases: tuple[CaseRow, ...]

    @property
    def case_refs(self) -> tuple[str, ...]:
        return tuple(row.case_ref for row in self.cases)

    def total(self, timing: Timing) -> int:
        """Items of every counted case with this timing."""
        field = {Timing.ON_TIME: "on_time", Timing.LATE: "late", Timing.OPEN_OVERDUE: "open_overdue",
                 Timing.OPEN: "open"}[timing]
        return sum(getattr(step, field) for step in self.timeliness)

    def as_json(self) -> dict[str, Any]:
        return {
            "partnership": self.partnership, "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(), "as_of": self.as_of.isoformat(),
            "cases_counted": len(self.cases), "case_refs": list(self.case_refs),
            "items": {timing.value: self.total(timing)
                      for timing in (Timing.ON_TIME, Timing.LATE, Timing.OPEN_OVERDUE, Timing.OPEN)},
            "timeliness": [step.as_json() for step in self.timeliness],
            "by_path": dict(self.by_path), "by_stage": dict(self.by_stage),
            "rapid_reviews": self.conversion.as_json(),
            "open_actions": {"by_age": dict(self.action_ages),
                             "actions": [action.as_json() for action in self.open_actions]},
            "timelines": {timeline.case_ref: [bar.as_json() for bar in timeline.bars]
                          for timeline in self.timelines},
            "cases": [row.as_json() for row in self.cases],
        }


def counted_cases(cases: Iterable[CaseState], period: Period) -> list[CaseState]:
    """The cases a report on `period` counts: those whose referral the SBU received in it (the
    London date of receipt). Each case is so counted in exactly one period, whenever its steps
    fall; those are counted as they stand on the report's date."""
    return sorted((case for case in cases if case.referred_on in period),
                  key=lambda case: (case.referred_on, case.case_ref))


def report_figures(cases: Iterable[CaseState], *, period: Period, as_of: date,
                   calendar: WorkingDayCalendar, partnership: str, registry: Registry) -> ReportFigures:
    """Every figure of the report on the cases referred in `period`, as they stand on `as_of`.
    Cancelled items (a step the case's path no longer needs) are left out of every count. Steps
    are in the registry's order, a case's stage as the registry reads it."""
    counted = counted_cases(cases, period)
    actions = _open_actions(counted, as_of=as_of, calendar=calendar)
    return ReportFigures(
        partnership=partnership, period=period, as_of=as_of,
        timeliness=_timeliness(counted, as_of=as_of, calendar=calendar, registry=registry),
        by_path=_tally(counted, [*(path.value for path in CasePath), AWAITING_DECISION],
                       lambda case: case.path.value if case.path else AWAITING_DECISION),
        by_stage=_tally(counted, [stage.value for stage in Stage],
                        lambda case: registry.stage_of(case).value),
        conversion=_conversion(counted),
        open_actions=actions,
        action_ages=_action_ages(actions),
        timelines=tuple(_timeline(case, as_of=as_of) for case in counted),
        cases=tuple(_case_row(case, as_of=as_of, stage=registry.stage_of(case)) for case in counted),
    )


def _step_order(steps: Sequence[str], registry: Registry) -> list[str]:
    # The registry's steps in its order; a step it no longer knows after them, as first seen.
    known = {step: index for index, step in enumerate(registry.steps)}
    first_seen = {step: index for index, step in reversed(list(enumerate(steps)))}
    return sorted(first_seen, key=lambda step: (known.get(step, len(known)), first_seen[step]))


def _timeliness(cases: Sequence[CaseState], *, as_of: date, calendar: WorkingDayCalendar,
                registry: Registry) -> tuple[StepTimeliness, ...]:
    items = [item for case in cases for item in case.steps if item.state is not StepState.CANCELLED]
    rows = []
    for step in _step_order([item.step for item in items], registry):
        own = [item for item in items if item.step == step]
        timings = Counter(timing_of(item, as_of=as_of) for item in own)
        lateness = [days_late(item, as_of=as_of, calendar=calendar) for item in own
                    if timing_of(item, as_of=as_of) is Timing.LATE]
        rows.append(StepTimeliness(
            step=step, title=own[0].title, on_time=timings[Timing.ON_TIME], late=timings[Timing.LATE],
            open_overdue=timings[Timing.OPEN_OVERDUE], open=timings[Timing.OPEN],
            median_days_late=float(statistics.median(lateness)) if lateness else None))
    return tuple(rows)


def _tally(cases: Sequence[CaseState], labels: Sequence[str], label_of: Callable[[CaseState], str]) -> Tally:
    counts = Counter(label_of(case) for case in cases)
    return tuple((label, counts[label]) for label in labels)


def _conversion(cases: Sequence[CaseState]) -> ReviewConversion:
    reviewed = [case for case in cases if case.started("rapid-review")]
    routes = [*(route.value for route in ReviewRoute), ROUTE_UNDECIDED]
    return ReviewConversion(
        rapid_reviews=len(reviewed),
        csprs=sum(1 for case in reviewed if case.anchors.get(Anchor.CSPR_COMMISSIONED) is not None),
        routes=_tally(reviewed, routes, lambda case: case.review.value if case.review else ROUTE_UNDECIDED))


def _open_actions(cases: Sequence[CaseState], *, as_of: date,
                  calendar: WorkingDayCalendar) -> tuple[OpenAction, ...]:
    actions = [
        OpenAction(case_ref=case.case_ref, action=item.subject, agency=item.agency, added_on=item.anchor_on,
                   due=item.due, age_days=calendar.working_days_between(item.anchor_on, as_of),
                   overdue=item.due < as_of)
        for case in cases for item in case.items_of(ACTION.step) if item.is_open]
    return tuple(sorted(actions, key=lambda action: (-action.age_days, action.case_ref, action.action)))


def age_band(age_days: int) -> str:
    for upper, label in ACTION_AGE_BANDS:
        if upper is None or age_days <= upper:
            return label
    raise AssertionError("the last band has no upper bound")


def _action_ages(actions: Sequence[OpenAction]) -> Tally:
    counts = Counter(age_band(action.age_days) for action in actions)
    return tuple((label, counts[label]) for _, label in ACTION_AGE_BANDS)


def _timeline(case: CaseState, *, as_of: date) -> CaseTimeline:
    bars = [TimelineBar(label=item.label, anchor_on=item.anchor_on, due=item.due,
                        done_on=item.completed_on if item.state is StepState.DONE else None,
                        timing=timing_of(item, as_of=as_of))
            for item in case.steps if item.state is not StepState.CANCELLED]
    return CaseTimeline(case.case_ref, tuple(sorted(bars, key=lambda bar: (bar.due, bar.label))))


def _case_row(case: CaseState, *, as_of: date, stage: Stage) -> CaseRow:
    timings = Counter(timing_of(item, as_of=as_of) for item in case.steps)
    anchors = case.anchors
    return CaseRow(
        case_ref=case.case_ref, category=case.category, path=case.path, review=case.review, stage=stage,
        referred=case.referred_on, decided=anchors.get(Anchor.DECISION),
        sin_submitted=anchors.get(Anchor.SIN_SUBMITTED), rr_meeting_held=anchors.get(Anchor.MEETING),
        cspr_commissioned=anchors.get(Anchor.CSPR_COMMISSIONED), published=anchors.get(Anchor.CSPR_PUBLISHED),
        on_time=timings[Timing.ON_TIME], late=timings[Timing.LATE],
        open=timings[Timing.OPEN_OVERDUE] + timings[Timing.OPEN])


# -- the daily digest ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DigestItem:
    case_ref: str
    item: ItemState


@dataclass(frozen=True, slots=True)
class DigestFigures:
    """What the SBU's daily digest says on `day`: every open item of the open cases (the email
    sorts them into overdue, due today and due by `horizon_end`), and how many cases are open."""

    day: date
    horizon_end: date
    open_cases: int
    items: tuple[DigestItem, ...]


def digest_figures(cases: Iterable[CaseState], *, day: date, calendar: WorkingDayCalendar,
                   horizon_days: int = DIGEST_HORIZON_DAYS) -> DigestFigures:
    """The digest on `day`; its horizon is `horizon_days` working days after it."""
    open_cases = [case for case in cases if case.status is not CaseStatus.CLOSED]
    return DigestFigures(
        day=day, horizon_end=calendar.add_working_days(day, horizon_days), open_cases=len(open_cases),
        items=tuple(DigestItem(case.case_ref, item) for case in open_cases for item in case.open_steps()))


# -- the monthly progress summary ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProgressEntry:
    step: str
    subject: str
    title: str
    due: date
    days_late: int  # working days past its due date; 0 for an item not late

    @property
    def label(self) -> str:
        return f"{self.step}:{self.subject}" if self.subject else self.step


@dataclass(frozen=True, slots=True)
class ReviewProgress:
    """One open review: where its case stands, what is late, and what comes next."""

    case_ref: str
    stage: Stage
    path: CasePath | None
    review: ReviewRoute | None
    late: tuple[ProgressEntry, ...]
    next: tuple[ProgressEntry, ...]
    # Open items not late beyond those in `next`.
    more: int


@dataclass(frozen=True, slots=True)
class ProgressSummary:
    """The progress of every open review on `day`: a case not closed with an item of its Rapid
    Review or its CSPR still open."""

    day: date
    reviews: tuple[ReviewProgress, ...]

    @property
    def late_reviews(self) -> int:
        return sum(1 for review in self.reviews if review.late)


def progress_summary(cases: Iterable[CaseState], *, day: date, calendar: WorkingDayCalendar,
                     registry: Registry, next_items: int = NEXT_ITEMS) -> ProgressSummary:
    """Every open review on `day`, oldest case first. Its late items are its open items due
    before `day`, most late first; what is next, its other open items (of any of its processes,
    an action included) by due date, the first `next_items` of them listed."""
    reviews = []
    for case in cases:
        if case.status is CaseStatus.CLOSED or not any(
                item.is_open and item.process in REVIEW_PROCESSES for item in case.steps):
            continue
        # working_days_between is 0 for an item due today or later.
        entries = [ProgressEntry(step=item.step, subject=item.subject, title=item.title, due=item.due,
                                 days_late=calendar.working_days_between(item.due, day))
                   for item in case.open_steps()]
        late = sorted((e for e in entries if e.due < day), key=lambda e: (e.due, e.label))
        coming = sorted((e for e in entries if e.due >= day), key=lambda e: (e.due, e.label))
        reviews.append(ReviewProgress(case_ref=case.case_ref, stage=registry.stage_of(case), path=case.path,
                                      review=case.review, late=tuple(late), next=tuple(coming[:next_items]),
                                      more=max(0, len(coming) - next_items)))
    return ProgressSummary(day=day, reviews=tuple(reviews))
