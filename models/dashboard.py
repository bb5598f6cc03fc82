"""What the operators' dashboard shows of a case, beyond its forms: the tags on its flow runs (its
path and its stage, so runs can be filtered by them) and its timeline, a table of every dated item
with its due date, when it was done and how late, linked from the case's own run; and, over every
case, the deadlines ahead.

Pure: computed from the case as the store shows it (`CaseState`), a date and the working-day
calendar. Built from the case reference, step ids, rule titles, dates and states only, never
names, narrative or a child's record id (docs/architecture.md, "Data protection"), so whatever publishes it
carries nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from models.calendar import LONDON, WorkingDayCalendar
from models.choices import ACTION_STEP
from models.enums import TimerKind
from models.registry import Registry
from models.reporting import AWAITING_DECISION, Timing, days_late, timing_of
from models.state import CaseState
from models.titles import agency_title, title_of

PATH_TAG = "path:"
STAGE_TAG = "stage:"
# The prefixes of the tags this module owns on a run: any other tag (a deployment's own, say) is kept.
OWN_TAG_PREFIXES = (PATH_TAG, STAGE_TAG)


def case_tags(state: CaseState, registry: Registry) -> tuple[str, ...]:
    """The tags every flow run of the case carries: its path (as the reports name it, so
    `awaiting-decision` before the DSPs decide) and its stage (`Registry.stage_of`)."""
    path = state.path.value if state.path is not None else AWAITING_DECISION
    return (f"{PATH_TAG}{path}", f"{STAGE_TAG}{registry.stage_of(state).value}")


def retagged(current: Iterable[str], state: CaseState, registry: Registry) -> list[str]:
    """A run's tags with its case's path and stage brought up to date: the tags this module owns
    replaced, every other tag kept. Sorted, so an unchanged set compares equal."""
    kept = {tag for tag in current if not tag.startswith(OWN_TAG_PREFIXES)}
    return sorted(kept | set(case_tags(state, registry)))


# -- the timeline ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One dated item of a case: what it is, when it is due, when it was done, and where it stands.
    `late_by` is in working days after the due date: for a late item, until it was done; for an
    open item past its due date, until the timeline's date; None for an item neither late nor
    overdue."""

    item: str  # the step id, and the subject (an agency, an action) after a colon
    title: str
    subject: str  # the agency or action it is owed by or for, as a person reads it ("" if none)
    due: date
    done: date | None
    state: Timing
    late_by: int | None


def timeline_rows(state: CaseState, *, as_of: date, calendar: WorkingDayCalendar) -> tuple[TimelineRow, ...]:
    """Every item of the case by due date (then by name), as it stands on `as_of`. A cancelled
    item (a step the case's path no longer needs) stays in the table as cancelled, so the table
    shows why it was not done."""
    rows = []
    for item in state.steps:
        timing = timing_of(item, as_of=as_of)
        late = timing in (Timing.LATE, Timing.OPEN_OVERDUE)
        subject = item.subject.upper() if item.step == ACTION_STEP else (
            agency_title(item.subject) if item.agency is not None else item.subject)
        rows.append(TimelineRow(
            item=item.label, title=item.title, subject=subject, due=item.due,
            done=item.completed_on if timing in (Timing.ON_TIME, Timing.LATE) else None, state=timing,
            late_by=days_late(item, as_of=as_of, calendar=calendar) if late else None))
    return tuple(sorted(rows, key=lambda row: (row.due, row.item)))


# The timeline's columns. The dashboard draws a Markdown table's cells on one line each, and its
# artifact page leaves about 690 px for the table on a 1,280 px screen: so three columns, the
# item's title the only long one, when it was done said with where it stands.
TIMELINE_HEADER = ("Item", "Due", "Where it stands")


def _standing(row: TimelineRow) -> str:
    days = f"{row.late_by} working day{'' if row.late_by == 1 else 's'}" if row.late_by else ""
    match row.state:
        case Timing.LATE if days:
            return f"Done late, by {days}"
        case Timing.OPEN_OVERDUE if days:
            return f"Overdue by {days}"
        case _:
            return title_of(row.state)


def timeline_table(rows: tuple[TimelineRow, ...]) -> str:
    """The timeline as one Markdown table: each item by its title (and its agency or action), its
    due date, and where it stands in words, with how many working days late."""
    lines = ["| " + " | ".join(TIMELINE_HEADER) + " |", "|" + "---|" * len(TIMELINE_HEADER)]
    for row in rows:
        cells = (f"{row.title} ({row.subject})" if row.subject else row.title, f"{row.due:%d %b %Y}",
                 _standing(row))
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def timeline_key(case_ref: str) -> str:
    """The key of the case's timeline artifact. Artifact keys allow lowercase letters, digits and
    dashes; case references are letters, digits and dashes."""
    return f"timeline-{case_ref.lower()}"


def timeline_link_key(case_ref: str) -> str:
    """The key of the link to the timeline on the case's own run (its Artifacts tab)."""
    return f"timeline-link-{case_ref.lower()}"


def timeline_url(case_ref: str) -> str:
    """Where the dashboard shows the timeline's latest version (a path on the dashboard)."""
    return f"/artifacts/key/{timeline_key(case_ref)}"


def timeline_description(state: CaseState, *, as_of: date, registry: Registry) -> str:
    """The Markdown above the timeline table: the case, its path and stage, and the table's date."""
    path = state.path.value if state.path is not None else "not yet decided"
    return (f"**Timeline of case {state.case_ref}** as of {as_of:%A %d %B %Y}: path {path}, stage "
            f"{registry.stage_of(state).value}. Each item is due by the end of its due date, London time; "
            "\"late by\" counts the working days after it, until the item was done or, still open, "
            "until today.")


# -- the deadlines ahead -----------------------------------------------------------------------------

DEADLINES_KEY = "deadlines"
# How far ahead the deadlines table looks, in working days after today.
DEADLINES_WORKING_DAYS = 5


@dataclass(frozen=True, slots=True)
class UpcomingAlert:
    """One timer still to fire, as the deadlines table needs it."""

    case_ref: str
    item: str  # the step id, and the subject (an agency, an action) after a colon
    kind: TimerKind
    sequence: int
    fire_at: datetime


def deadlines_until(*, today: date, calendar: WorkingDayCalendar) -> date:
    """The last day the deadlines table shows: `DEADLINES_WORKING_DAYS` working days after today."""
    return calendar.add_working_days(today, DEADLINES_WORKING_DAYS)


def deadline_rows(alerts: Iterable[UpcomingAlert]) -> list[dict[str, str]]:
    """The deadlines table: every reminder, overdue alert and escalation still to go out, by when
    (London time), then case and item."""
    ordered = sorted(alerts, key=lambda a: (a.fire_at, a.case_ref, a.item, a.kind.value, a.sequence))
    return [{"when (London)": f"{a.fire_at.astimezone(LONDON):%a %d %b %Y %H:%M}", "case": a.case_ref,
             "item": a.item,
             "alert": a.kind.value + (f" {a.sequence}" if a.kind is TimerKind.ESCALATION else "")}
            for a in ordered]


def deadlines_description(*, today: date, until: date) -> str:
    return (f"**Deadlines ahead** from {today:%A %d %B %Y} to the end of {until:%A %d %B %Y}: every "
            "reminder, overdue alert and escalation still to go out, by when it goes (London time). "
            "Refreshed by each timer pass and each change to a case's timers.")
