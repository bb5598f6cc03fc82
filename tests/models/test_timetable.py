"""The statutory timetable: every clock of docs/procedure.md, counted by hand across the holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.calendar import WorkingDayCalendar
from models.processes import STEP_RULES, StepId, build_registry
from models.timetable import Anchor, Clocks, DateSet, Deadline, known_anchors

CALENDAR = WorkingDayCalendar()
DEFAULTS = Clocks()
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None)
REGISTRY = build_registry()


# The timetable as `sbu timetable` derives it from the step declarations, for the dates it is given.

def statutory_timetable(*, referred_at: datetime, la_aware: date | None, notified: date | None,
                        clocks: Clocks, calendar: WorkingDayCalendar, sin_submitted: date | None = None,
                        near_miss: bool = False) -> list[Deadline]:
    anchors = known_anchors(referred_at=referred_at, la_aware=la_aware, notified=notified,
                            sin_submitted=sin_submitted, near_miss=near_miss)
    return REGISTRY.timetable(anchors, clocks=REGISTRY.check_clocks(clocks), calendar=calendar,
                              near_miss=near_miss)


def rapid_review_timetable(*, notified: date, sin_submitted: date | None, clocks: Clocks,
                           calendar: WorkingDayCalendar, near_miss: bool) -> list[Deadline]:
    anchors = {Anchor.NOTIFICATION: notified}
    if sin_submitted is not None:
        anchors[Anchor.SIN_SUBMITTED] = sin_submitted
    return REGISTRY.timetable(anchors, clocks=REGISTRY.check_clocks(clocks), calendar=calendar,
                              near_miss=near_miss)


def due_date(step: str, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar,
             near_miss: bool = False) -> tuple[date, str]:
    return STEP_RULES[step].due(anchor_date, clocks=clocks, calendar=calendar, near_miss=near_miss)


def deadline(step: str, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar) -> Deadline:
    return STEP_RULES[step].deadline(anchor_date=anchor_date, clocks=clocks, calendar=calendar)

# The issue's example referral.
REFERRED_AT = datetime(2026, 12, 23, 10, 15, tzinfo=UTC)
LA_AWARE = date(2026, 12, 22)

# Bank holidays in the window: Fri 25 Dec, Mon 28 Dec (Boxing Day substitute), Fri 1 Jan 2027.


def due_by_step(rows: list[Deadline]) -> dict[str, date]:
    return {row.step: row.due for row in rows}


def test_the_issue_example_before_notification() -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=None,
                               clocks=DEFAULTS, calendar=CALENDAR)
    assert due_by_step(rows) == {
        # referred Wed 23 Dec 10:15 GMT (day 0) -> Thu 24 (1)
        StepId.DSP_DECISION: date(2026, 12, 24),
        # aware Tue 22 (day 0): Wed 23 (1), Thu 24 (2), [Fri 25, Sat, Sun, Mon 28] Tue 29 (3),
        # Wed 30 (4), Thu 31 (5)
        StepId.SIN_SUBMISSION: date(2026, 12, 31),
        StepId.PARTNERS_INFORMED: date(2026, 12, 31),
    }
    assert [row.step for row in rows] == [
        StepId.DSP_DECISION, StepId.SIN_SUBMISSION, StepId.PARTNERS_INFORMED,
    ]


def test_the_issue_example_notified_on_the_last_day() -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=date(2026, 12, 31),
                               clocks=DEFAULTS, calendar=CALENDAR)
    assert due_by_step(rows) == {
        StepId.DSP_DECISION: date(2026, 12, 24),
        StepId.SIN_SUBMISSION: date(2026, 12, 31),
        StepId.PARTNERS_INFORMED: date(2026, 12, 31),
        # notified Thu 31 Dec (day 0): [Fri 1 Jan] Mon 4 (1), Tue 5 (2), Wed 6 (3), Thu 7 (4), Fri 8 (5)
        StepId.RR_AGENCY_RESPONSES: date(2027, 1, 8),
        # ... Mon 11 (6), Tue 12 (7), Wed 13 (8)
        StepId.RR_MEETING: date(2027, 1, 13),
        # ... Thu 14 (9), Fri 15 (10), Mon 18 (11), Tue 19 (12), Wed 20 (13), Thu 21 (14), Fri 22 (15)
        StepId.RR_REPORT_TO_PANEL: date(2027, 1, 22),
    }


def test_the_issue_example_notified_the_day_of_referral() -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=date(2026, 12, 23),
                               clocks=DEFAULTS, calendar=CALENDAR)
    due = due_by_step(rows)
    # notified Wed 23 Dec (day 0): Thu 24 (1), [25-28] Tue 29 (2), Wed 30 (3), Thu 31 (4),
    # [Fri 1 Jan] Mon 4 (5), Tue 5 (6), Wed 6 (7), Thu 7 (8), Fri 8 (9), Mon 11 (10), Tue 12 (11),
    # Wed 13 (12), Thu 14 (13), Fri 15 (14), Mon 18 (15)
    assert due[StepId.RR_AGENCY_RESPONSES] == date(2027, 1, 4)
    assert due[StepId.RR_MEETING] == date(2027, 1, 7)
    assert due[StepId.RR_REPORT_TO_PANEL] == date(2027, 1, 18)


def test_rows_say_how_each_date_was_reached() -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=date(2026, 12, 31),
                               clocks=DEFAULTS, calendar=CALENDAR)
    by_step = {row.step: row for row in rows}
    dsp = by_step[StepId.DSP_DECISION]
    assert dsp.anchor is Anchor.REFERRAL_RECEIVED
    assert dsp.anchor_date == date(2026, 12, 23)
    assert dsp.rule.startswith("1 working day")
    assert dsp.rule.endswith("after referral-received")
    sin = by_step[StepId.SIN_SUBMISSION]
    assert sin.anchor is Anchor.LA_AWARE
    assert sin.anchor_date == LA_AWARE
    assert "s16C" in sin.source
    meeting = by_step[StepId.RR_MEETING]
    assert meeting.rule == "on working day 8 after notification"
    assert by_step[StepId.RR_REPORT_TO_PANEL].anchor is Anchor.SIN_SUBMITTED
    for row in rows:
        assert row.title == STEP_RULES[row.step].title
        assert row.source == STEP_RULES[row.step].source


def test_the_referral_date_is_its_london_date() -> None:
    # Thu 21 May 2026 23:30 UTC is Fri 22 May 00:30 BST: day 0 is the Friday, Mon 25 is a holiday.
    rows = statutory_timetable(referred_at=datetime(2026, 5, 21, 23, 30, tzinfo=UTC),
                               la_aware=date(2026, 5, 21), notified=None, clocks=DEFAULTS,
                               calendar=CALENDAR)
    by_step = {row.step: row for row in rows}
    assert by_step[StepId.DSP_DECISION].anchor_date == date(2026, 5, 22)
    assert by_step[StepId.DSP_DECISION].due == date(2026, 5, 26)


def test_a_naive_referral_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        statutory_timetable(referred_at=datetime(2026, 12, 23, 10, 15), la_aware=LA_AWARE,
                            notified=None, clocks=DEFAULTS, calendar=CALENDAR)


def test_notified_before_aware_is_refused() -> None:
    with pytest.raises(ValueError, match="notification date cannot be before"):
        statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=date(2026, 12, 21),
                            clocks=DEFAULTS, calendar=CALENDAR)


def test_notified_the_day_the_la_became_aware_is_accepted() -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=LA_AWARE,
                               clocks=DEFAULTS, calendar=CALENDAR)
    # notified Tue 22: 23 (1), 24 (2), 29 (3), 30 (4), 31 (5), [1 Jan] 4 (6), 5 (7), Wed 6 (8)
    assert due_by_step(rows)[StepId.RR_AGENCY_RESPONSES] == date(2026, 12, 31)
    assert due_by_step(rows)[StepId.RR_MEETING] == date(2027, 1, 6)


def test_the_report_to_the_panel_counts_from_the_sin_when_it_differs() -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=date(2026, 12, 31),
                               sin_submitted=date(2027, 1, 4), clocks=DEFAULTS, calendar=CALENDAR)
    # SIN Mon 4 Jan (day 0): Tue 5 .. Fri 8 (4), Mon 11 .. Fri 15 (9), Mon 18 .. Fri 22 (14), Mon 25 (15)
    assert due_by_step(rows)[StepId.RR_REPORT_TO_PANEL] == date(2027, 1, 25)
    assert due_by_step(rows)[StepId.RR_MEETING] == date(2027, 1, 13)  # still from notification


# -- the Rapid Review: a SIN, or a near miss ----------------------------------------------------

def test_the_report_to_the_panel_needs_a_sin() -> None:
    without_sin = rapid_review_timetable(notified=date(2026, 12, 31), sin_submitted=None,
                                         clocks=DEFAULTS, calendar=CALENDAR, near_miss=False)
    assert [row.step for row in without_sin] == [StepId.RR_AGENCY_RESPONSES, StepId.RR_MEETING]
    with_sin = rapid_review_timetable(notified=date(2026, 12, 31), sin_submitted=date(2026, 12, 31),
                                      clocks=DEFAULTS, calendar=CALENDAR, near_miss=False)
    assert [row.step for row in with_sin] == [
        StepId.RR_AGENCY_RESPONSES, StepId.RR_MEETING, StepId.RR_REPORT_TO_PANEL,
    ]
    assert due_by_step(with_sin)[StepId.RR_REPORT_TO_PANEL] == date(2027, 1, 22)


def test_near_miss_clocks_are_longer() -> None:
    near_miss = rapid_review_timetable(notified=date(2026, 12, 23), sin_submitted=None,
                                       clocks=DEFAULTS, calendar=CALENDAR, near_miss=True)
    # decision Wed 23 Dec (day 0): 24 (1), 29 (2), 30 (3), 31 (4), 4 Jan (5), 5 (6), 6 (7), 7 (8),
    # 8 (9), Mon 11 (10), 12 (11), 13 (12), 14 (13), Fri 15 (14), Mon 18 (15)
    assert due_by_step(near_miss) == {
        StepId.RR_AGENCY_RESPONSES: date(2027, 1, 11),
        StepId.RR_MEETING: date(2027, 1, 18),
    }
    by_step = {row.step: row for row in near_miss}
    assert by_step[StepId.RR_MEETING].rule == "on working day 15 after notification"
    assert by_step[StepId.RR_AGENCY_RESPONSES].rule == "10 working days after notification"


def test_near_miss_clocks_are_configurable() -> None:
    clocks = Clocks(near_miss_rr_agency_responses_days=6, near_miss_rr_meeting_day=9)
    rows = rapid_review_timetable(notified=date(2026, 12, 23), sin_submitted=None, clocks=clocks,
                                  calendar=CALENDAR, near_miss=True)
    assert due_by_step(rows) == {
        StepId.RR_AGENCY_RESPONSES: date(2027, 1, 5),  # 24, 29, 30, 31, 4 (5), Tue 5 (6)
        StepId.RR_MEETING: date(2027, 1, 8),  # ... 6 (7), 7 (8), Fri 8 (9)
    }


def test_the_near_miss_flag_does_not_touch_other_clocks() -> None:
    for step in (StepId.DSP_DECISION, StepId.SIN_SUBMISSION, StepId.RR_REPORT_TO_PANEL):
        plain, _ = due_date(step, anchor_date=LA_AWARE, clocks=DEFAULTS, calendar=CALENDAR)
        near, _ = due_date(step, anchor_date=LA_AWARE, clocks=DEFAULTS, calendar=CALENDAR,
                           near_miss=True)
        assert plain == near


# -- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("clocks", "step", "expected"),
    [
        (Clocks(dsp_decision_days=2), StepId.DSP_DECISION, date(2026, 12, 29)),  # 24 (1), 29 (2)
        (Clocks(sin_submission_days=6), StepId.SIN_SUBMISSION, date(2027, 1, 4)),  # ..31 (5), 4 (6)
        (Clocks(partners_informed_days=1), StepId.PARTNERS_INFORMED, date(2026, 12, 23)),
        (Clocks(sin_submission_days=1), StepId.PARTNERS_INFORMED, date(2026, 12, 31)),  # unchanged
    ],
    ids=["dsp-decision-2", "sin-submission-6", "partners-informed-1", "sin-clock-leaves-partners"],
)
def test_configured_clocks_change_the_dates(clocks: Clocks, step: StepId, expected: date) -> None:
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=None,
                               clocks=clocks, calendar=CALENDAR)
    assert due_by_step(rows)[step] == expected


def test_configured_rapid_review_clocks_change_the_dates() -> None:
    clocks = Clocks(rr_agency_responses_days=3, rr_meeting_day=4, rr_report_to_panel_days=20)
    rows = rapid_review_timetable(notified=date(2026, 12, 31), sin_submitted=date(2026, 12, 31),
                                  clocks=clocks, calendar=CALENDAR, near_miss=False)
    assert due_by_step(rows) == {
        StepId.RR_AGENCY_RESPONSES: date(2027, 1, 6),  # 4 (1), 5 (2), Wed 6 (3)
        StepId.RR_MEETING: date(2027, 1, 7),  # Thu 7 (4)
        StepId.RR_REPORT_TO_PANEL: date(2027, 1, 29),  # 4..8 (5), 11..15 (10), 18..22 (15), 25..29 (20)
    }


def test_closure_days_change_the_dates() -> None:
    calendar = WorkingDayCalendar(closure_days={date(2026, 12, 24), date(2026, 12, 29)})
    rows = statutory_timetable(referred_at=REFERRED_AT, la_aware=LA_AWARE, notified=None,
                               clocks=DEFAULTS, calendar=calendar)
    # aware Tue 22: Wed 23 (1), [24 closed, 25-28, 29 closed] Wed 30 (2), Thu 31 (3), [1 Jan]
    # Mon 4 (4), Tue 5 (5)
    assert due_by_step(rows) == {
        StepId.DSP_DECISION: date(2026, 12, 30),
        StepId.SIN_SUBMISSION: date(2027, 1, 5),
        StepId.PARTNERS_INFORMED: date(2027, 1, 5),
    }


@pytest.mark.parametrize(
    "settings_",
    [
        {"dsp_decision_days": 0},
        {"sin_submission_days": -1},
        {"rr_meeting_day": 61},
        {"cspr_publication_months": 0},
        {"not_a_clock": 5},
    ],
    ids=lambda value: next(iter(value)),
)
def test_impossible_clocks_are_refused(settings_: dict[str, int]) -> None:
    # A pydantic ValidationError is a ValueError: the shape is refused by Clocks, a name or bound
    # the steps do not declare by the registry.
    with pytest.raises(ValueError, match=r"greater than or equal to 1|not a clock setting|must be from 1 to"):
        REGISTRY.check_clocks(Clocks.model_validate(settings_))


def test_clocks_are_frozen() -> None:
    with pytest.raises(ValidationError):
        DEFAULTS.dsp_decision_days = 2  # type: ignore[attr-defined]


def test_the_defaults_are_the_procedures() -> None:
    lengths = {name: DEFAULTS.length(setting) for name, setting in REGISTRY.clock_settings.items()}
    assert (lengths["dsp_decision_days"], lengths["sin_submission_days"], lengths["partners_informed_days"],
            lengths["rr_agency_responses_days"], lengths["rr_meeting_day"],
            lengths["rr_report_to_panel_days"], lengths["cspr_report_to_panel_days_before"],
            lengths["cspr_publication_months"]) == (1, 5, 5, 5, 8, 15, 7, 6)
    assert lengths["near_miss_rr_agency_responses_days"] > lengths["rr_agency_responses_days"]
    assert lengths["near_miss_rr_meeting_day"] > lengths["rr_meeting_day"]


# -- the CSPR ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("publication", "expected"),
    [
        # Wed 30 Jun 2027: Tue 29 (1), Mon 28 (2), Fri 25 (3), Thu 24 (4), Wed 23 (5), Tue 22 (6), Mon 21 (7)
        (date(2027, 6, 30), date(2027, 6, 21)),
        # Tue 2 Jun 2026: Mon 1 (1), Fri 29 .. Tue 26 May (5), [Mon 25 spring bank holiday] Fri 22 (6),
        # Thu 21 (7)
        (date(2026, 6, 2), date(2026, 5, 21)),
        # Fri 8 Jan 2027: 7, 6, 5, Mon 4 (4), [Fri 1 Jan] Thu 31 (5), Wed 30 (6), Tue 29 Dec (7)
        (date(2027, 1, 8), date(2026, 12, 29)),
        # Thu 9 Apr 2026: 8, 7 (2), [Mon 6, Fri 3] Thu 2 (3), Wed 1 (4), Tue 31 (5), Mon 30 (6), Fri 27 (7)
        (date(2026, 4, 9), date(2026, 3, 27)),
    ],
    ids=str,
)
def test_cspr_report_to_panel_is_seven_working_days_before_publication(
    publication: date, expected: date
) -> None:
    row = deadline(StepId.CSPR_REPORT_TO_PANEL, anchor_date=publication, clocks=DEFAULTS,
                   calendar=CALENDAR)
    assert row.due == expected
    assert row.anchor is Anchor.PLANNED_PUBLICATION
    assert row.rule == "7 working days before planned-publication"
    assert CALENDAR.add_working_days(row.due, 7) == publication


def test_cspr_report_to_panel_lead_is_configurable() -> None:
    due, _ = due_date(StepId.CSPR_REPORT_TO_PANEL, anchor_date=date(2027, 6, 30),
                      clocks=Clocks(cspr_report_to_panel_days_before=10), calendar=CALENDAR)
    assert due == date(2027, 6, 16)  # ... Mon 21 (7), Fri 18 (8), Thu 17 (9), Wed 16 (10)


@pytest.mark.parametrize(
    ("commissioned", "months", "expected"),
    [
        (date(2026, 1, 15), 6, date(2026, 7, 15)),
        (date(2026, 7, 31), 6, date(2027, 1, 31)),  # across a year end
        (date(2026, 10, 31), 6, date(2027, 4, 30)),  # 31 Apr does not exist -> 30th
        (date(2026, 3, 31), 6, date(2026, 9, 30)),  # 31 Sep does not exist -> 30th
        (date(2026, 8, 31), 6, date(2027, 2, 28)),  # February in a common year
        (date(2027, 8, 31), 6, date(2028, 2, 29)),  # February in a leap year
        (date(2027, 8, 29), 6, date(2028, 2, 29)),
        (date(2026, 8, 29), 6, date(2027, 2, 28)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),  # leap day, a year on
        (date(2026, 12, 23), 1, date(2027, 1, 23)),
        (date(2026, 12, 23), 24, date(2028, 12, 23)),
    ],
    ids=str,
)
def test_cspr_publication_is_months_after_commissioning(
    commissioned: date, months: int, expected: date
) -> None:
    row = deadline(StepId.CSPR_PUBLICATION, anchor_date=commissioned,
                   clocks=Clocks(cspr_publication_months=months), calendar=CALENDAR)
    assert row.due == expected
    assert row.anchor is Anchor.CSPR_COMMISSIONED
    assert row.rule == f"{months} months after cspr-commissioned"


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        # commissioned Wed 23 Dec 2026: 24 (1), 29 (2), 30 (3), 31 (4), 4 Jan (5) .. 8 (9), 11 (10)
        (StepId.CSPR_REVIEWER_APPOINTED, date(2027, 1, 11)),
        (StepId.CSPR_TERMS_OF_REFERENCE, date(2027, 1, 25)),  # 12..15 (14), 18..22 (19), 25 (20)
        (StepId.CSPR_IMR_REQUESTS, date(2027, 1, 11)),  # as the reviewer: 10 working days
    ],
    ids=str,
)
def test_cspr_working_day_clocks(step: StepId, expected: date) -> None:
    row = deadline(step, anchor_date=date(2026, 12, 23), clocks=DEFAULTS, calendar=CALENDAR)
    assert row.due == expected
    assert row.anchor is Anchor.CSPR_COMMISSIONED


def test_an_imr_is_due_by_default_30_working_days_after_the_requests() -> None:
    row = deadline(StepId.CSPR_IMR, anchor_date=date(2026, 12, 23), clocks=DEFAULTS, calendar=CALENDAR)
    # 24, 29..31 Dec (4), 4..8 Jan (9), 11..15 (14), 18..22 (19), 25..29 (24), 1..5 Feb (29), Mon 8 (30)
    assert (row.due, row.anchor) == (date(2027, 2, 8), Anchor.IMRS_REQUESTED)


def test_an_actions_due_date_is_set_by_the_plan_not_counted() -> None:
    assert isinstance(STEP_RULES[StepId.ACTION].clock, DateSet)
    with pytest.raises(ValueError, match="set by the action plan"):
        deadline(StepId.ACTION, anchor_date=date(2026, 12, 23), clocks=DEFAULTS, calendar=CALENDAR)


def test_every_step_has_a_rule_and_a_clock() -> None:
    assert set(STEP_RULES) == set(StepId)
    for step in StepId:
        if isinstance(STEP_RULES[step].clock, DateSet):
            continue
        row = deadline(step, anchor_date=date(2027, 6, 30), clocks=DEFAULTS, calendar=CALENDAR)
        assert row.step == step
        assert row.source
        assert row.rule


# -- properties ---------------------------------------------------------------------------------

WORKING_DAY_CLOCKS: dict[StepId, str] = {
    StepId.DSP_DECISION: "dsp_decision_days",
    StepId.SIN_SUBMISSION: "sin_submission_days",
    StepId.PARTNERS_INFORMED: "partners_informed_days",
    StepId.RR_AGENCY_RESPONSES: "rr_agency_responses_days",
    StepId.RR_MEETING: "rr_meeting_day",
    StepId.RR_REPORT_TO_PANEL: "rr_report_to_panel_days",
    StepId.CSPR_REVIEWER_APPOINTED: "cspr_reviewer_appointed_days",
    StepId.CSPR_TERMS_OF_REFERENCE: "cspr_terms_of_reference_days",
    StepId.RR_OUTCOME: "rr_outcome_days",
    StepId.RR_PANEL_RESPONSE: "rr_panel_response_days",
    StepId.RR_ACTION_PLAN: "rr_action_plan_days",
    StepId.CSPR_IMR_REQUESTS: "cspr_imr_requests_days",
    StepId.CSPR_IMR: "cspr_imrs_days",
    StepId.CSPR_ACTION_PLAN: "cspr_action_plan_days",
    StepId.CSPR_FAMILY_ENGAGEMENT: "cspr_family_engagement_days",
    StepId.CSPR_DRAFT_REPORT: "cspr_draft_report_days",
    StepId.CSPR_FINAL_REPORT: "cspr_final_report_days",
}
days_2000_2040 = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))


@PROPERTY_SETTINGS
@given(step=st.sampled_from(sorted(WORKING_DAY_CLOCKS)), anchor=days_2000_2040,
       days=st.integers(min_value=1, max_value=30))
def test_every_working_day_clock_counts_exactly_its_days(step: StepId, anchor: date, days: int) -> None:
    clocks = Clocks.model_validate({WORKING_DAY_CLOCKS[step]: days})
    due, _ = due_date(step, anchor_date=anchor, clocks=clocks, calendar=CALENDAR)
    assert due > anchor
    assert CALENDAR.is_working_day(due)
    assert CALENDAR.working_days_between(anchor, due) == days


@PROPERTY_SETTINGS
@given(notified=days_2000_2040)
def test_near_miss_due_dates_are_never_earlier(notified: date) -> None:
    plain = due_by_step(rapid_review_timetable(notified=notified, sin_submitted=None, clocks=DEFAULTS,
                                               calendar=CALENDAR, near_miss=False))
    near = due_by_step(rapid_review_timetable(notified=notified, sin_submitted=None, clocks=DEFAULTS,
                                              calendar=CALENDAR, near_miss=True))
    assert near.keys() == plain.keys()
    for step, due in plain.items():
        assert near[step] > due


@PROPERTY_SETTINGS
@given(
    referred_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 1),
                             timezones=st.just(UTC)),
    later_by=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
    aware_before=st.integers(min_value=0, max_value=10),
)
def test_a_later_referral_never_brings_a_deadline_forward(
    referred_at: datetime, later_by: timedelta, aware_before: int
) -> None:
    aware = referred_at.date() - timedelta(days=aware_before)
    first = statutory_timetable(referred_at=referred_at, la_aware=aware, notified=aware,
                                clocks=DEFAULTS, calendar=CALENDAR)
    later = statutory_timetable(referred_at=referred_at + later_by, la_aware=aware, notified=aware,
                                clocks=DEFAULTS, calendar=CALENDAR)
    for before, after in zip(first, later, strict=True):
        assert before.step is after.step
        assert after.due >= before.due
        assert CALENDAR.is_working_day(after.due)


@PROPERTY_SETTINGS
@given(publication=days_2000_2040, days=st.integers(min_value=1, max_value=30))
def test_the_report_to_the_panel_is_the_nth_working_day_before_publication(
    publication: date, days: int
) -> None:
    due, _ = due_date(StepId.CSPR_REPORT_TO_PANEL, anchor_date=publication,
                      clocks=Clocks(cspr_report_to_panel_days_before=days), calendar=CALENDAR)
    assert due < publication
    assert CALENDAR.is_working_day(due)
    # Exactly N working days in [due, publication): the mirror of "N working days after".
    one_day = timedelta(days=1)
    assert CALENDAR.working_days_between(due - one_day, publication - one_day) == days
    if CALENDAR.is_working_day(publication):
        assert CALENDAR.add_working_days(due, days) == publication


@PROPERTY_SETTINGS
@given(commissioned=days_2000_2040, months=st.integers(min_value=1, max_value=24))
def test_publication_target_is_in_the_right_month_and_never_past_the_day(
    commissioned: date, months: int
) -> None:
    due, _ = due_date(StepId.CSPR_PUBLICATION, anchor_date=commissioned,
                      clocks=Clocks(cspr_publication_months=months), calendar=CALENDAR)
    month_index = commissioned.year * 12 + commissioned.month - 1 + months
    year, month_zero_based = divmod(month_index, 12)
    assert (due.year, due.month) == (year, month_zero_based + 1)
    assert due.day <= commissioned.day
    assert due.day == commissioned.day or (due + timedelta(days=1)).day == 1
