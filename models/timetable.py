"""The statutory timetable: every step's clock, what starts it, and where the rule comes from.

This is the one place that says how long each step may take (DESIGN.md §2). Every clock is
configurable through `Clocks`; the defaults are the procedure's. Dates in, dates out: the caller
supplies the anchors and the calendar, nothing here reads the wall clock.

A step's rule (`StepRule`) names its clock as an object (`WorkingDaysAfter`, `WorkingDaysBefore`,
`MonthsAfter`), so the procedure engine, the dashboard's forms and the
`sbu timetable` command all count from the same definition; a process added later brings rules of
its own in the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from models.calendar import WorkingDayCalendar, london_date
from models.enums import Anchor, Role, StepId

__all__ = ["STEP_RULES", "Anchor", "Clocks", "DateSet", "Deadline", "MonthsAfter", "StepClock",
           "StepRule", "WorkingDaysAfter", "WorkingDaysBefore", "deadline", "due_date",
           "rapid_review_timetable", "review_timetable", "statutory_timetable"]


class Clocks(BaseModel):
    """Every clock of the procedure, in working days unless the name says otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dsp_decision_days: int = Field(1, ge=1, le=60)
    sin_submission_days: int = Field(5, ge=1, le=60)
    partners_informed_days: int = Field(5, ge=1, le=60)
    rr_agency_responses_days: int = Field(5, ge=1, le=60)
    rr_meeting_day: int = Field(8, ge=1, le=60)
    rr_report_to_panel_days: int = Field(15, ge=1, le=120)
    # After the meeting is held: its outcome signed off; the Panel's answer expected; the action
    # plan agreed.
    rr_outcome_days: int = Field(1, ge=1, le=60)
    rr_panel_response_days: int = Field(15, ge=1, le=120)
    rr_action_plan_days: int = Field(20, ge=1, le=120)
    # Near misses: "proportionate timescales and a focus on learning"; longer by default.
    near_miss_rr_agency_responses_days: int = Field(10, ge=1, le=120)
    near_miss_rr_meeting_day: int = Field(15, ge=1, le=120)
    cspr_reviewer_appointed_days: int = Field(10, ge=1, le=250)
    cspr_terms_of_reference_days: int = Field(20, ge=1, le=250)
    cspr_imr_requests_days: int = Field(10, ge=1, le=250)
    # Each agency's IMR is due on the date the review panel sets; this many working days after
    # the requests when it sets none.
    cspr_imrs_days: int = Field(30, ge=1, le=250)
    # An IMR received with sections missing is chased for the rest, due this many working days on.
    imr_resubmission_days: int = Field(5, ge=1, le=60)
    cspr_family_engagement_days: int = Field(60, ge=1, le=250)
    cspr_draft_report_days: int = Field(90, ge=1, le=250)
    cspr_final_report_days: int = Field(110, ge=1, le=250)
    cspr_report_to_panel_days_before: int = Field(7, ge=1, le=60)
    cspr_publication_months: int = Field(6, ge=1, le=24)
    cspr_action_plan_days: int = Field(20, ge=1, le=120)


def _setting(clocks: Clocks, value: str | int) -> int:
    """A clock's length: a fixed number, or the `Clocks` setting of that name."""
    if isinstance(value, int):
        return value
    length: int = getattr(clocks, value)
    return length


def _check_setting(value: str | int | None) -> None:
    # Fail when the rule is defined, not when a case first reaches it.
    if isinstance(value, str) and value not in Clocks.model_fields:
        raise ValueError(f"no clock setting {value!r}")
    if isinstance(value, int) and value < 1:
        raise ValueError("a clock counts at least one working day")


class StepClock(Protocol):
    """How a step's due date follows from its anchor date."""

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        """The due date, and the rule in words."""
        ...


@dataclass(frozen=True, slots=True)
class WorkingDaysAfter:
    """Due on the Nth working day strictly after the anchor (the anchor day is day 0); a near miss
    may have a longer clock of its own. `held_on` words it as the day a meeting is held."""

    days: str | int
    near_miss_days: str | int | None = None
    held_on: bool = False

    def __post_init__(self) -> None:
        _check_setting(self.days)
        _check_setting(self.near_miss_days)

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        chosen = self.near_miss_days if near_miss and self.near_miss_days is not None else self.days
        days = _setting(clocks, chosen)
        if self.held_on:
            words = f"on working day {days} after {anchor.value}"
        else:
            words = f"{days} working {'day' if days == 1 else 'days'} after {anchor.value}"
        return calendar.add_working_days(anchor_date, days), words


@dataclass(frozen=True, slots=True)
class WorkingDaysBefore:
    """Due on the Nth working day strictly before the anchor ("at least N working days before")."""

    days: str | int

    def __post_init__(self) -> None:
        _check_setting(self.days)

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        days = _setting(clocks, self.days)
        return calendar.subtract_working_days(anchor_date, days), f"{days} working days before {anchor.value}"


@dataclass(frozen=True, slots=True)
class MonthsAfter:
    """Due the same day N calendar months on; a day the month lacks clamps to its last day."""

    months: str | int

    def __post_init__(self) -> None:
        _check_setting(self.months)

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        months = _setting(clocks, self.months)
        return _add_months(anchor_date, months), f"{months} months after {anchor.value}"


@dataclass(frozen=True, slots=True)
class DateSet:
    """Due on a date a person sets when the item opens (an action's due date in the plan); there
    is no clock to count it from."""

    words: str

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        raise ValueError(f"the due date is {self.words}: it is given when the item opens")


@dataclass(frozen=True, slots=True)
class StepRule:
    """One step: who owns it, what starts its clock, how long it may take, and the authority.

    `step` is a `StepId` for the procedure's own steps; a process added later (`models.registry`)
    may bring steps of its own, named in the same spelling (lowercase letters, digits, dashes)."""

    step: str
    title: str
    owner: Role
    anchor: Anchor
    source: str
    clock: StepClock

    def due(self, anchor_date: date, *, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool = False) -> tuple[date, str]:
        """The due date counted from `anchor_date`, and the rule in words."""
        return self.clock.due(anchor_date, anchor=self.anchor, clocks=clocks, calendar=calendar,
                              near_miss=near_miss)

    def deadline(self, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar,
                 near_miss: bool = False) -> Deadline:
        due, words = self.due(anchor_date, clocks=clocks, calendar=calendar, near_miss=near_miss)
        return Deadline(step=self.step, title=self.title, due=due, anchor=self.anchor,
                        anchor_date=anchor_date, rule=words, source=self.source)


# Who owns each step, what starts its clock, how long it may take, and the authority for it.
STEP_RULES: dict[str, StepRule] = {
    rule.step: rule
    for rule in (
        StepRule(StepId.DSP_DECISION, "DSPs decide on a SIN and a Rapid Review", Role.SBU,
                 Anchor.REFERRAL_RECEIVED, "local procedure, step 2",
                 WorkingDaysAfter("dsp_decision_days")),
        StepRule(StepId.SIN_SUBMISSION, "Local authority submits the Serious Incident Notification",
                 Role.LOCAL_AUTHORITY, Anchor.LA_AWARE, "Children Act 2004 s16C; GOV.UK guidance",
                 WorkingDaysAfter("sin_submission_days")),
        StepRule(StepId.PARTNERS_INFORMED, "Local authority informs the safeguarding partners",
                 Role.LOCAL_AUTHORITY, Anchor.LA_AWARE, "GOV.UK guidance",
                 WorkingDaysAfter("partners_informed_days")),
        StepRule(StepId.RR_AGENCY_RESPONSES, "Agency information for the Rapid Review",
                 Role.AGENCY, Anchor.NOTIFICATION, "local procedure, step 4",
                 WorkingDaysAfter("rr_agency_responses_days", "near_miss_rr_agency_responses_days")),
        StepRule(StepId.RR_MEETING, "Rapid Review meeting is held", Role.SBU,
                 Anchor.NOTIFICATION, "local procedure, step 4",
                 WorkingDaysAfter("rr_meeting_day", "near_miss_rr_meeting_day", held_on=True)),
        StepRule(StepId.RR_OUTCOME, "Rapid Review outcome signed off by the DSPs", Role.SBU,
                 Anchor.MEETING, "local procedure, step 4",
                 WorkingDaysAfter("rr_outcome_days")),
        StepRule(StepId.RR_REPORT_TO_PANEL, "Rapid Review sent to the National Panel", Role.SBU,
                 Anchor.SIN_SUBMITTED, "National Panel expectation",
                 WorkingDaysAfter("rr_report_to_panel_days")),
        StepRule(StepId.RR_PANEL_RESPONSE, "National Panel's response recorded", Role.SBU,
                 Anchor.RR_REPORT_SENT, "National Panel practice (expected)",
                 WorkingDaysAfter("rr_panel_response_days")),
        StepRule(StepId.RR_ACTION_PLAN, "Rapid Review action plan agreed", Role.SBU,
                 Anchor.RR_OUTCOME, "local procedure; Working Together (action plans)",
                 WorkingDaysAfter("rr_action_plan_days")),
        StepRule(StepId.CSPR_REVIEWER_APPOINTED, "Independent reviewer appointed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6",
                 WorkingDaysAfter("cspr_reviewer_appointed_days")),
        StepRule(StepId.CSPR_TERMS_OF_REFERENCE, "Terms of reference agreed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6",
                 WorkingDaysAfter("cspr_terms_of_reference_days")),
        StepRule(StepId.CSPR_IMR_REQUESTS, "Individual Management Reviews requested", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, IMRs",
                 WorkingDaysAfter("cspr_imr_requests_days")),
        StepRule(StepId.CSPR_IMR, "Individual Management Review", Role.AGENCY,
                 Anchor.IMRS_REQUESTED, "local procedure, IMRs (by the date the review panel sets)",
                 WorkingDaysAfter("cspr_imrs_days")),
        StepRule(StepId.CSPR_FAMILY_ENGAGEMENT, "Family engagement completed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6",
                 WorkingDaysAfter("cspr_family_engagement_days")),
        StepRule(StepId.CSPR_DRAFT_REPORT, "Draft report received", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6",
                 WorkingDaysAfter("cspr_draft_report_days")),
        StepRule(StepId.CSPR_FINAL_REPORT, "Final report agreed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6",
                 WorkingDaysAfter("cspr_final_report_days")),
        StepRule(StepId.CSPR_REPORT_TO_PANEL,
                 "Final report sent to the Panel and the Secretary of State", Role.SBU,
                 Anchor.PLANNED_PUBLICATION, "Working Together (at least 7 working days before)",
                 WorkingDaysBefore("cspr_report_to_panel_days_before")),
        StepRule(StepId.CSPR_PUBLICATION, "Review published", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "National Panel expectation (6 months)",
                 MonthsAfter("cspr_publication_months")),
        StepRule(StepId.CSPR_ACTION_PLAN, "CSPR action plan agreed", Role.SBU,
                 Anchor.CSPR_PUBLISHED, "local procedure; Working Together (action plans)",
                 WorkingDaysAfter("cspr_action_plan_days")),
        StepRule(StepId.ACTION, "Action", Role.AGENCY, Anchor.ACTION_ADDED,
                 "the action plan (due date set by the plan)", DateSet("set by the action plan")),
    )
}


@dataclass(frozen=True, slots=True)
class Deadline:
    """One step's due date and how it was reached."""

    step: str
    title: str
    due: date
    anchor: Anchor
    anchor_date: date
    rule: str
    source: str


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has a 28th")


def due_date(step: StepId, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar,
             near_miss: bool = False) -> tuple[date, str]:
    """The due date of `step` counted from its anchor, and the rule in words."""
    rule = STEP_RULES.get(step)
    if rule is None:
        raise ValueError(f"no clock for step {step}")
    return rule.due(anchor_date, clocks=clocks, calendar=calendar, near_miss=near_miss)


def deadline(step: StepId, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar,
             near_miss: bool = False) -> Deadline:
    return STEP_RULES[step].deadline(anchor_date=anchor_date, clocks=clocks, calendar=calendar,
                                     near_miss=near_miss)


def statutory_timetable(*, referred_at: datetime, la_aware: date | None, notified: date | None,
                        clocks: Clocks, calendar: WorkingDayCalendar,
                        sin_submitted: date | None = None, near_miss: bool = False) -> list[Deadline]:
    """The first deadlines of a case: the decision and notification steps, and, once the case is
    notified, the Rapid Review's. The Rapid Review's report to the Panel counts from the SIN's
    submission, which is the notification unless told otherwise. A near miss has no SIN: its
    Rapid Review counts from the DSPs' decision (`notified`), on its longer clocks."""
    if notified is not None and la_aware is not None and notified < la_aware:
        raise ValueError("the notification date cannot be before the local authority became aware")
    if la_aware is None and not near_miss:
        raise ValueError("the date the local authority became aware is needed for its notification")
    referred_on = london_date(referred_at)
    rows = [deadline(StepId.DSP_DECISION, anchor_date=referred_on, clocks=clocks, calendar=calendar)]
    if not near_miss and la_aware is not None:
        rows += [deadline(StepId.SIN_SUBMISSION, anchor_date=la_aware, clocks=clocks, calendar=calendar),
                 deadline(StepId.PARTNERS_INFORMED, anchor_date=la_aware, clocks=clocks, calendar=calendar)]
    if notified is not None:
        rows += rapid_review_timetable(notified=notified,
                                       sin_submitted=None if near_miss else sin_submitted or notified,
                                       clocks=clocks, calendar=calendar, near_miss=near_miss)
    return rows


def rapid_review_timetable(*, notified: date, sin_submitted: date | None, clocks: Clocks,
                           calendar: WorkingDayCalendar, near_miss: bool) -> list[Deadline]:
    """The Rapid Review's deadlines. Without a SIN (a near miss) nothing goes to the Panel."""
    rows = [
        deadline(StepId.RR_AGENCY_RESPONSES, anchor_date=notified, clocks=clocks,
                 calendar=calendar, near_miss=near_miss),
        deadline(StepId.RR_MEETING, anchor_date=notified, clocks=clocks, calendar=calendar,
                 near_miss=near_miss),
    ]
    if sin_submitted is not None:
        rows.append(deadline(StepId.RR_REPORT_TO_PANEL, anchor_date=sin_submitted, clocks=clocks,
                             calendar=calendar))
    return rows


# The CSPR's steps counted from its commissioning, in the order they fall due.
CSPR_COMMISSIONED_STEPS = (StepId.CSPR_REVIEWER_APPOINTED, StepId.CSPR_TERMS_OF_REFERENCE,
                           StepId.CSPR_IMR_REQUESTS, StepId.CSPR_FAMILY_ENGAGEMENT, StepId.CSPR_DRAFT_REPORT,
                           StepId.CSPR_FINAL_REPORT, StepId.CSPR_PUBLICATION)


def review_timetable(*, commissioned: date | None, planned_publication: date | None, clocks: Clocks,
                     calendar: WorkingDayCalendar) -> list[Deadline]:
    """A CSPR's deadlines: its steps counted from commissioning, ending with the publication target
    (6 calendar months on), and the report to the Panel and the Secretary of State, the 7th working
    day strictly before the planned publication date."""
    rows: list[Deadline] = []
    if commissioned is not None:
        rows += [deadline(step, anchor_date=commissioned, clocks=clocks, calendar=calendar)
                 for step in CSPR_COMMISSIONED_STEPS]
    if planned_publication is not None:
        rows.append(deadline(StepId.CSPR_REPORT_TO_PANEL, anchor_date=planned_publication, clocks=clocks,
                             calendar=calendar))
    return rows
