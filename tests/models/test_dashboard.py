"""What the dashboard shows of a case beyond its forms: its runs' path and stage tags, its timeline
table, and the Markdown above every form of the procedure's own processes. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from models.calendar import WorkingDayCalendar
from models.dashboard import (
    UpcomingAlert,
    case_tags,
    deadline_rows,
    deadlines_description,
    deadlines_until,
    retagged,
    timeline_description,
    timeline_key,
    timeline_rows,
    timeline_table,
)
from models.descriptions import form_markdown
from models.enums import AbuseOrNeglect, Agency, Anchor, CasePath, CaseStatus, Category, StepState, TimerKind
from models.processes import BUILTIN_PROCESSES, build_registry
from models.registry import Process, Wait
from models.reporting import Timing
from models.rules import CaseFacts
from models.state import CaseState, DecisionSummary, ItemState

CALENDAR = WorkingDayCalendar()
REGISTRY = build_registry()


def item(step: str, *, due: date, state: StepState = StepState.OPEN, done: date | None = None,
         subject: str = "", process: str = "case") -> ItemState:
    return ItemState(step=step, subject=subject, process=process, title=f"The {step} step", state=state,
                     anchor=Anchor.LA_AWARE, anchor_on=date(2026, 12, 22), due=due, rule="5 working days",
                     completed_on=done, agency=Agency(subject) if subject in set(Agency) else None)


def case(*steps: ItemState, path: CasePath | None = None) -> CaseState:
    status = CaseStatus.AWAITING_DECISION if path is None else CaseStatus.IN_PROGRESS
    return CaseState(
        case_ref="SR-2026-0001", status=status, path=path, category=Category.SERIOUS_HARM,
        facts=CaseFacts(category=Category.SERIOUS_HARM, abuse_or_neglect=AbuseOrNeglect.SUSPECTED,
                        looked_after_child=False, care_leaver=False),
        referred_at=datetime(2026, 12, 23, 10, 0, tzinfo=UTC),
        anchors={Anchor.REFERRAL_RECEIVED: date(2026, 12, 23)}, steps=steps, agencies=(Agency.POLICE,),
        decision=None if path is None else DecisionSummary(True, True, "an officer"))


# -- tags -----------------------------------------------------------------------------------------------

def test_a_case_is_tagged_with_its_path_and_stage_as_they_change() -> None:
    referred = case(item("dsp-decision", due=date(2026, 12, 24)))
    assert case_tags(referred, REGISTRY) == ("path:awaiting-decision", "stage:awaiting-decision")
    decision = item("dsp-decision", due=date(2026, 12, 24), state=StepState.DONE, done=date(2026, 12, 24))
    decided = case(decision, item("sin-submission", due=date(2026, 12, 31)),
                   path=CasePath.SIN_AND_RAPID_REVIEW)
    assert case_tags(decided, REGISTRY) == ("path:sin-and-rapid-review", "stage:notification")
    reviewing = replace(decided, steps=(*decided.steps,
                                        item("rr-meeting", due=date(2027, 1, 7), process="rapid-review")))
    assert case_tags(reviewing, REGISTRY) == ("path:sin-and-rapid-review", "stage:rapid-review")
    closed = replace(reviewing, status=CaseStatus.CLOSED)
    assert case_tags(closed, REGISTRY)[1] == "stage:closed"


def test_retagging_replaces_the_path_and_stage_and_keeps_every_other_tag() -> None:
    decided = case(item("sin-submission", due=date(2026, 12, 31)), path=CasePath.SIN_ONLY)
    before = ["case", "path:awaiting-decision", "stage:awaiting-decision", "operator-note"]
    assert retagged(before, decided, REGISTRY) == ["case", "operator-note", "path:sin-only",
                                                   "stage:notification"]
    # Already up to date: the same list, so nothing is written.
    once = retagged(before, decided, REGISTRY)
    assert retagged(once, decided, REGISTRY) == once


# -- the timeline ---------------------------------------------------------------------------------------

def test_the_timeline_lists_every_item_by_due_date_with_how_late_in_working_days() -> None:
    # As of Tue 5 Jan 2027. 25 and 28 Dec 2026 and 1 Jan 2027 are bank holidays.
    state = case(
        item("dsp-decision", due=date(2026, 12, 24), state=StepState.DONE, done=date(2026, 12, 24)),
        # Due Thu 24 Dec, done Tue 29 Dec: late by 1 working day (29 Dec).
        item("sin-submission", due=date(2026, 12, 24), state=StepState.DONE, done=date(2026, 12, 29)),
        # Due Wed 30 Dec, still open on Tue 5 Jan: 31 Dec, 4 and 5 Jan.
        item("partners-informed", due=date(2026, 12, 30)),
        item("rr-agency-responses", subject="police", due=date(2027, 1, 8), process="rapid-review"),
        item("rr-report-to-panel", due=date(2027, 1, 20), state=StepState.CANCELLED, process="rapid-review"),
        path=CasePath.SIN_AND_RAPID_REVIEW)
    rows = timeline_rows(state, as_of=date(2027, 1, 5), calendar=CALENDAR)
    assert [(r.item, r.due, r.done, r.state, r.late_by) for r in rows] == [
        ("dsp-decision", date(2026, 12, 24), date(2026, 12, 24), Timing.ON_TIME, None),
        ("sin-submission", date(2026, 12, 24), date(2026, 12, 29), Timing.LATE, 1),
        ("partners-informed", date(2026, 12, 30), None, Timing.OPEN_OVERDUE, 3),
        ("rr-agency-responses:police", date(2027, 1, 8), None, Timing.OPEN, None),
        ("rr-report-to-panel", date(2027, 1, 20), None, Timing.CANCELLED, None),
    ]
    # One Markdown table: each item by its title (and its agency), where it stands in words.
    table = timeline_table(rows).splitlines()
    assert table[:2] == ["| Item | Due | Where it stands |", "|---|---|---|"]
    assert table[2] == "| The dsp-decision step | 24 Dec 2026 | Done on time |"
    assert table[3] == "| The sin-submission step | 24 Dec 2026 | Done late, by 1 working day |"
    assert table[4] == "| The partners-informed step | 30 Dec 2026 | Overdue by 3 working days |"
    assert table[5] == "| The rr-agency-responses step (Police) | 08 Jan 2027 | Open |"
    assert table[6] == "| The rr-report-to-panel step | 20 Jan 2027 | Cancelled |"
    assert len(table) == 2 + len(rows)
    # A day on, the open item is a day later; the one done late is not.
    later = timeline_rows(state, as_of=date(2027, 1, 6), calendar=CALENDAR)
    assert (later[1].late_by, later[2].late_by) == (1, 4)


def test_a_step_due_on_friday_and_done_on_saturday_is_late_by_no_working_day() -> None:
    state = case(item("sin-submission", due=date(2027, 1, 15), state=StepState.DONE, done=date(2027, 1, 16)))
    [row] = timeline_rows(state, as_of=date(2027, 2, 1), calendar=CALENDAR)
    assert (row.state, row.late_by) == (Timing.LATE, 0)


def test_the_timelines_key_and_description_carry_the_case_reference_path_and_stage_only() -> None:
    state = case(item("sin-submission", due=date(2026, 12, 31)), path=CasePath.SIN_ONLY)
    assert timeline_key(state.case_ref) == "timeline-sr-2026-0001"
    description = timeline_description(state, as_of=date(2026, 12, 29), registry=REGISTRY)
    assert description.startswith("**Timeline of case SR-2026-0001** as of Tuesday 29 December 2026: "
                                  "path sin-only, stage notification.")


# -- the forms ------------------------------------------------------------------------------------------

def _every_item_open(process: Process, wait: Wait) -> CaseState:
    """A case with every item `wait` answers open, each due on its own date."""
    steps = []
    for number, spec in enumerate(wait.items):
        subject = "police" if spec.subject_field == "agency" else ("a1" if spec.subject_field else "")
        steps.append(ItemState(step=spec.step, subject=subject, process=process.id, title=spec.rule.title,
                               state=StepState.OPEN, anchor=spec.rule.anchor, anchor_on=date(2027, 1, 4),
                               due=date(2027, 2, 1 + number), rule=f"rule text {number}",
                               agency=Agency.POLICE if subject == "police" else None))
    return replace(case(path=CasePath.SIN_AND_RAPID_REVIEW), steps=tuple(steps))


WAITS = [(process, wait) for process in BUILTIN_PROCESSES for wait in process.waits]


@pytest.mark.parametrize(("process", "wait"), WAITS, ids=[wait.name for _, wait in WAITS])
def test_every_form_says_what_is_asked_by_when_and_under_which_rule(process: Process, wait: Wait) -> None:
    state = _every_item_open(process, wait)
    markdown = form_markdown(wait, state, None)
    assert wait.describe is not None, "a form of the procedure says what it asks in its own words"
    assert markdown.startswith(f"## {wait.title} for case SR-2026-0001\n\n")
    # What is asked: a sentence of the form's own before the first item.
    assert len(markdown.split("\n")[2]) > 60
    for open_item, spec in zip(state.steps, wait.items, strict=True):
        due = open_item.due
        named = (open_item.label, markdown)
        assert f"{due:%A %d %B %Y}" in markdown or f"{due:%a %d %b %Y}" in markdown, named
        assert open_item.rule in markdown, named
        assert spec.rule.source in markdown, named



# -- the deadlines ahead -----------------------------------------------------------------------------

def test_the_deadlines_table_lists_each_alert_by_when_it_goes_in_london_time() -> None:
    summer = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)  # 09:00 in London (BST)
    alerts = [
        UpcomingAlert("SR-2027-0002", "sin-submission", TimerKind.ESCALATION, 3, summer),
        UpcomingAlert("SR-2027-0001", "rr-agency-responses:police", TimerKind.OVERDUE, 0,
                      datetime(2027, 5, 31, 23, 1, tzinfo=UTC)),
        UpcomingAlert("SR-2027-0001", "dsp-decision", TimerKind.REMINDER, 0, summer),
    ]
    assert deadline_rows(alerts) == [
        {"when (London)": "Tue 01 Jun 2027 00:01", "case": "SR-2027-0001",
         "item": "rr-agency-responses:police", "alert": "overdue"},
        {"when (London)": "Tue 01 Jun 2027 09:00", "case": "SR-2027-0001", "item": "dsp-decision",
         "alert": "reminder"},
        {"when (London)": "Tue 01 Jun 2027 09:00", "case": "SR-2027-0002", "item": "sin-submission",
         "alert": "escalation 3"},
    ]


def test_the_deadlines_table_looks_five_working_days_ahead() -> None:
    # From Wednesday 23 December 2026: 24, 29, 30, 31 December and 4 January (Christmas Day, Boxing
    # Day, Monday 28th in lieu and New Year's Day are not working days).
    assert deadlines_until(today=date(2026, 12, 23), calendar=CALENDAR) == date(2027, 1, 4)
    assert "to the end of Monday 04 January 2027" in deadlines_description(
        today=date(2026, 12, 23), until=date(2027, 1, 4))
