"""What each page of the desk shows, computed from the cases as the store shows them
(`models.state.CaseState`) and today's date: plain rows for the templates, nothing read here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from models.calendar import WorkingDayCalendar
from models.enums import Agency, CasePath, CaseStatus, PanelResponse, ReviewRoute, Stage, StepState
from models.reporting import Timing, days_late, timing_of
from models.state import CaseState, ItemState
from models.titles import agency_title, title_of, words


class Sort(StrEnum):
    """How the cases list is ordered."""

    NEXT_DUE = "next-due"
    MOST_LATE = "most-late"
    REFERENCE = "reference"
    REFERRED = "referred"


SORT_TITLES = {Sort.NEXT_DUE: "Next due first", Sort.MOST_LATE: "Most late first",
               Sort.REFERENCE: "Case reference", Sort.REFERRED: "Newest referral first"}


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One open case in the list: where it stands, what is next and what is late."""

    case_ref: str
    category: str
    stage: Stage
    path: str
    referred_on: date
    next_label: str
    next_title: str
    next_due: date | None
    late: int
    most_late_by: int


def case_rows(cases: Iterable[CaseState], *, today: date, calendar: WorkingDayCalendar,
              stage_of: Callable[[CaseState], Stage], stage: Stage | None = None,
              path: CasePath | None = None, late_only: bool = False,
              sort: Sort = Sort.NEXT_DUE) -> list[CaseRow]:
    """The open cases, filtered and sorted as asked; `stage_of` says where a case stands
    (`models.registry.Registry.stage_of`)."""
    rows = []
    for case in cases:
        if case.status is CaseStatus.CLOSED:
            continue
        case_stage = stage_of(case)
        if stage is not None and case_stage is not stage:
            continue
        if path is not None and case.path is not path:
            continue
        overdue = [item for item in case.open_steps() if item.overdue]
        if late_only and not overdue:
            continue
        nxt = min(case.open_steps(), key=lambda item: (item.due, item.label), default=None)
        rows.append(CaseRow(
            case_ref=case.case_ref, category=title_of(case.category), stage=case_stage,
            path=title_of(case.path) if case.path else "Awaiting the DSPs' decision",
            referred_on=case.referred_on,
            next_label=nxt.label if nxt else "", next_title=_item_title(nxt) if nxt else "Nothing open",
            next_due=nxt.due if nxt else None, late=len(overdue),
            most_late_by=max((days_late(item, as_of=today, calendar=calendar) for item in overdue),
                             default=0)))
    match sort:
        case Sort.NEXT_DUE:
            rows.sort(key=lambda row: (row.next_due or date.max, row.case_ref))
        case Sort.MOST_LATE:
            rows.sort(key=lambda row: (-row.late, -row.most_late_by, row.case_ref))
        case Sort.REFERENCE:
            rows.sort(key=lambda row: row.case_ref)
        case Sort.REFERRED:
            rows.sort(key=lambda row: (row.referred_on, row.case_ref), reverse=True)
        case _:
            raise AssertionError(f"unhandled sort {sort}")
    return rows


def _item_title(item: ItemState) -> str:
    if item.agency is not None:
        return f"{item.title} ({agency_title(item.subject or item.agency.value)})"
    return f"{item.title} ({item.subject})" if item.subject else item.title


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One item of a case's timeline as its page shows it."""

    label: str
    title: str
    due: date
    timing: Timing
    done_on: date | None
    done_by: str
    done_via: str
    late_by: int | None
    note: str


def timeline(case: CaseState, *, today: date, calendar: WorkingDayCalendar,
             name_of: Callable[[str], str] = str) -> list[TimelineRow]:
    """Every item of the case by due date: due, done (when, by whom, through what), how many working
    days late, and what is partly received (an IMR with sections missing) or was held without.
    `name_of` names a person by the handle the store records."""
    rows = []
    for item in case.steps:
        timing = timing_of(item, as_of=today)
        late = timing in (Timing.LATE, Timing.OPEN_OVERDUE)
        rows.append(TimelineRow(
            label=item.label, title=_item_title(item), due=item.due, timing=timing,
            done_on=item.completed_on if item.state is StepState.DONE else None,
            done_by=name_of(item.completed_by or "") if item.state is StepState.DONE else "",
            done_via=title_of(item.completed_via) if item.state is StepState.DONE else "",
            late_by=days_late(item, as_of=today, calendar=calendar) if late else None,
            note=_note(item)))
    return sorted(rows, key=lambda row: (row.due, row.label))


def _note(item: ItemState) -> str:
    details = item.details
    notes = []
    missing = details.get("missing_sections")
    if missing and item.is_open:
        received = _day_of(details.get("received_on"))
        notes.append(f"Partly received{f' on {received}' if received else ''}; sections missing: "
                     + ", ".join(words(str(section)) for section in missing))
    held_without = details.get("held_without")
    if held_without:
        notes.append("Held without information from " + ", ".join(agency_title(str(a)) for a in held_without))
    if details.get("deputies"):
        notes.append("Signed by a deputy for " + ", ".join(str(role) for role in details["deputies"]))
    if details.get("recommendation"):
        notes.append(f"Recommended: {_titled(ReviewRoute, details['recommendation'])}")
    if details.get("response"):
        notes.append(f"The Panel: {_titled(PanelResponse, details['response']).lower()}")
    if item.rule.startswith("re-timed") or item.rule.startswith("moved"):
        notes.append(item.rule[:1].upper() + item.rule[1:])
    return "; ".join(notes)


def _titled(enum: type[StrEnum], value: object) -> str:
    try:
        return title_of(enum(str(value)))
    except ValueError:
        return words(str(value))


def _day_of(value: object) -> str:
    try:
        return f"{date.fromisoformat(str(value)):%a %d %b %Y}"
    except ValueError:
        return ""


# -- what is due ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DueRow:
    case_ref: str
    label: str
    step: str
    title: str
    agency: str
    due: date
    late_by: int


@dataclass(frozen=True, slots=True)
class DueLists:
    overdue: list[DueRow]
    today: list[DueRow]
    this_week: list[DueRow]
    next_week: list[DueRow]
    week_end: date

    @property
    def next_week_end(self) -> date:
        return self.week_end + timedelta(days=7)


def due_lists(cases: Iterable[CaseState], *, today: date, calendar: WorkingDayCalendar,
              step: str | None = None, agency: Agency | None = None) -> DueLists:
    """The open items of the open cases: overdue (most late first), due today, due from tomorrow to
    the end of this week (Sunday), and due next week; for one step or one agency if asked."""
    week_end = today + timedelta(days=6 - today.weekday())
    overdue, due_today, this_week, next_week = [], [], [], []
    for case in cases:
        if case.status is CaseStatus.CLOSED:
            continue
        for item in case.open_steps():
            if step is not None and item.step != step:
                continue
            if agency is not None and item.agency is not agency:
                continue
            row = DueRow(case_ref=case.case_ref, label=item.label, step=item.step, title=_item_title(item),
                         agency=title_of(item.agency) if item.agency else "", due=item.due,
                         late_by=days_late(item, as_of=today, calendar=calendar) if item.due < today else 0)
            if item.due < today:
                overdue.append(row)
            elif item.due == today:
                due_today.append(row)
            elif item.due <= week_end:
                this_week.append(row)
            elif item.due <= week_end + timedelta(days=7):
                next_week.append(row)
    overdue.sort(key=lambda row: (-row.late_by, row.due, row.case_ref, row.label))
    due_today.sort(key=lambda row: (row.case_ref, row.label))
    this_week.sort(key=lambda row: (row.due, row.case_ref, row.label))
    next_week.sort(key=lambda row: (row.due, row.case_ref, row.label))
    return DueLists(overdue=overdue, today=due_today, this_week=this_week, next_week=next_week,
                    week_end=week_end)


def steps_open(cases: Sequence[CaseState]) -> list[tuple[str, str]]:
    """Every step with an item open in an open case, with its title, for the due list's filter."""
    found: dict[str, str] = {}
    for case in cases:
        if case.status is CaseStatus.CLOSED:
            continue
        for item in case.open_steps():
            found.setdefault(item.step, item.title)
    return sorted(found.items(), key=lambda pair: pair[1])
