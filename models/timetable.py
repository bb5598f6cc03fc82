"""The statutory timetable: every step's clock, what starts it, and where the rule comes from.

This is the one place that says how long each step may take (DESIGN.md §2). Every clock is
configurable through `Clocks`; the defaults are the procedure's. Dates in, dates out: the caller
supplies the anchors and the calendar, nothing here reads the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.calendar import WorkingDayCalendar, london_date
from models.enums import Role, StepId


class Anchor(StrEnum):
    """The dates a clock can start from; each is stored separately on the case."""

    REFERRAL_RECEIVED = "referral-received"
    LA_AWARE = "la-aware"
    NOTIFICATION = "notification"
    SIN_SUBMITTED = "sin-submitted"
    CSPR_COMMISSIONED = "cspr-commissioned"
    PLANNED_PUBLICATION = "planned-publication"


class Clocks(BaseModel):
    """Every clock of the procedure, in working days unless the name says otherwise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dsp_decision_days: int = Field(1, ge=1, le=60)
    sin_submission_days: int = Field(5, ge=1, le=60)
    partners_informed_days: int = Field(5, ge=1, le=60)
    rr_agency_responses_days: int = Field(5, ge=1, le=60)
    rr_meeting_day: int = Field(8, ge=1, le=60)
    rr_report_to_panel_days: int = Field(15, ge=1, le=120)
    # Near misses: "proportionate timescales and a focus on learning"; longer by default.
    near_miss_rr_agency_responses_days: int = Field(10, ge=1, le=120)
    near_miss_rr_meeting_day: int = Field(15, ge=1, le=120)
    cspr_reviewer_appointed_days: int = Field(10, ge=1, le=250)
    cspr_terms_of_reference_days: int = Field(20, ge=1, le=250)
    cspr_imrs_days: int = Field(30, ge=1, le=250)
    cspr_family_engagement_days: int = Field(60, ge=1, le=250)
    cspr_draft_report_days: int = Field(90, ge=1, le=250)
    cspr_final_report_days: int = Field(110, ge=1, le=250)
    cspr_report_to_panel_days_before: int = Field(7, ge=1, le=60)
    cspr_publication_months: int = Field(6, ge=1, le=24)


@dataclass(frozen=True, slots=True)
class StepRule:
    step: StepId
    title: str
    owner: Role
    anchor: Anchor
    source: str


# Who owns each step, what starts its clock, and the authority for it.
STEP_RULES: dict[StepId, StepRule] = {
    rule.step: rule
    for rule in (
        StepRule(StepId.DSP_DECISION, "DSPs decide on a SIN and a Rapid Review", Role.SBU,
                 Anchor.REFERRAL_RECEIVED, "local procedure, step 2"),
        StepRule(StepId.SIN_SUBMISSION, "Local authority submits the Serious Incident Notification",
                 Role.LOCAL_AUTHORITY, Anchor.LA_AWARE,
                 "Children Act 2004 s16C; GOV.UK guidance"),
        StepRule(StepId.PARTNERS_INFORMED, "Local authority informs the safeguarding partners",
                 Role.LOCAL_AUTHORITY, Anchor.LA_AWARE, "GOV.UK guidance"),
        StepRule(StepId.RR_AGENCY_RESPONSES, "Every involved agency returns its information",
                 Role.SBU, Anchor.NOTIFICATION, "local procedure, step 4"),
        StepRule(StepId.RR_MEETING, "Rapid Review meeting is held", Role.SBU,
                 Anchor.NOTIFICATION, "local procedure, step 4"),
        StepRule(StepId.RR_REPORT_TO_PANEL, "Rapid Review sent to the National Panel", Role.SBU,
                 Anchor.SIN_SUBMITTED, "National Panel expectation"),
        StepRule(StepId.CSPR_REVIEWER_APPOINTED, "Independent reviewer appointed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6"),
        StepRule(StepId.CSPR_TERMS_OF_REFERENCE, "Terms of reference agreed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6"),
        StepRule(StepId.CSPR_IMRS, "Individual Management Reviews returned", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure (date set by the panel)"),
        StepRule(StepId.CSPR_FAMILY_ENGAGEMENT, "Family engagement completed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6"),
        StepRule(StepId.CSPR_DRAFT_REPORT, "Draft report received", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6"),
        StepRule(StepId.CSPR_FINAL_REPORT, "Final report agreed", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "local procedure, step 6"),
        StepRule(StepId.CSPR_REPORT_TO_PANEL,
                 "Final report sent to the Panel and the Secretary of State", Role.SBU,
                 Anchor.PLANNED_PUBLICATION, "Working Together (at least 7 working days before)"),
        StepRule(StepId.CSPR_PUBLICATION, "Review published", Role.SBU,
                 Anchor.CSPR_COMMISSIONED, "National Panel expectation (6 months)"),
    )
}


class Deadline(BaseModel):
    """One step's due date and how it was reached."""

    model_config = ConfigDict(frozen=True)

    step: StepId
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
    days: int
    match step:
        case StepId.DSP_DECISION:
            days = clocks.dsp_decision_days
        case StepId.SIN_SUBMISSION:
            days = clocks.sin_submission_days
        case StepId.PARTNERS_INFORMED:
            days = clocks.partners_informed_days
        case StepId.RR_AGENCY_RESPONSES:
            days = (clocks.near_miss_rr_agency_responses_days if near_miss
                    else clocks.rr_agency_responses_days)
        case StepId.RR_MEETING:
            day_no = clocks.near_miss_rr_meeting_day if near_miss else clocks.rr_meeting_day
            return (calendar.add_working_days(anchor_date, day_no),
                    f"on working day {day_no} after {STEP_RULES[step].anchor.value}")
        case StepId.RR_REPORT_TO_PANEL:
            days = clocks.rr_report_to_panel_days
        case StepId.CSPR_REVIEWER_APPOINTED:
            days = clocks.cspr_reviewer_appointed_days
        case StepId.CSPR_TERMS_OF_REFERENCE:
            days = clocks.cspr_terms_of_reference_days
        case StepId.CSPR_IMRS:
            days = clocks.cspr_imrs_days
        case StepId.CSPR_FAMILY_ENGAGEMENT:
            days = clocks.cspr_family_engagement_days
        case StepId.CSPR_DRAFT_REPORT:
            days = clocks.cspr_draft_report_days
        case StepId.CSPR_FINAL_REPORT:
            days = clocks.cspr_final_report_days
        case StepId.CSPR_REPORT_TO_PANEL:
            before = clocks.cspr_report_to_panel_days_before
            return (calendar.subtract_working_days(anchor_date, before),
                    f"{before} working days before planned-publication")
        case StepId.CSPR_PUBLICATION:
            months = clocks.cspr_publication_months
            return _add_months(anchor_date, months), f"{months} months after cspr-commissioned"
        case _:
            raise ValueError(f"no clock for step {step}")
    plural = "day" if days == 1 else "days"
    return (calendar.add_working_days(anchor_date, days),
            f"{days} working {plural} after {STEP_RULES[step].anchor.value}")


def deadline(step: StepId, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar,
             near_miss: bool = False) -> Deadline:
    rule = STEP_RULES[step]
    due, words = due_date(step, anchor_date=anchor_date, clocks=clocks, calendar=calendar,
                          near_miss=near_miss)
    return Deadline(step=step, title=rule.title, due=due, anchor=rule.anchor,
                    anchor_date=anchor_date, rule=words, source=rule.source)


def statutory_timetable(*, referred_at: datetime, la_aware: date, notified: date | None,
                        clocks: Clocks, calendar: WorkingDayCalendar,
                        sin_submitted: date | None = None) -> list[Deadline]:
    """The first deadlines of a case: the decision and notification steps, and, once the case is
    notified, the Rapid Review's. The Rapid Review's report to the Panel counts from the SIN's
    submission, which is the notification unless told otherwise."""
    if notified is not None and notified < la_aware:
        raise ValueError("the notification date cannot be before the local authority became aware")
    referred_on = london_date(referred_at)
    rows = [
        deadline(StepId.DSP_DECISION, anchor_date=referred_on, clocks=clocks, calendar=calendar),
        deadline(StepId.SIN_SUBMISSION, anchor_date=la_aware, clocks=clocks, calendar=calendar),
        deadline(StepId.PARTNERS_INFORMED, anchor_date=la_aware, clocks=clocks, calendar=calendar),
    ]
    if notified is not None:
        rows += rapid_review_timetable(notified=notified, sin_submitted=sin_submitted or notified,
                                       clocks=clocks, calendar=calendar, near_miss=False)
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
