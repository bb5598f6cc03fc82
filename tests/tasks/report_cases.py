"""Five cases driven through the real case service, day by day on the fixed clock, for the tests of
the report, the daily digest and the progress summary. Every figure those tests expect is counted
by hand from what happens here, across the bank holidays of 2026-27 (25, 28 December, 1 January).

- SR-2026-0001, referred Tue 31 Mar 2026: before the reporting year; left awaiting the decision.
- SR-2026-0002, referred Wed 23 Dec 2026: SIN and Rapid Review. Decided 23 Dec (due 24 Dec, on
  time); SIN 29 Dec (due 31 Dec, on time); partners informed Mon 4 Jan (due 31 Dec, late by 1:
  1 Jan is a bank holiday). Notified 29 Dec, so the agencies' information is due Wed 6 Jan:
  police on 6 Jan (on time), health 8 Jan (late by 2), children's social care 11 Jan (late by 3),
  education never (open, overdue). Meeting due and held Mon 11 Jan; outcome due Tue 12 Jan,
  signed off Wed 13 Jan (late by 1), recommending a local CSPR, commissioned that day. Action a1
  added 13 Jan due 20 Jan (open, overdue); a2 added 14 Jan due 31 Mar. Reviewer appointed 20 Jan
  (due 27 Jan, on time). The report to the Panel (due 20 Jan) is not sent.
- SR-2027-0001, referred Tue 5 Jan 2027: a near miss, decided 5 Jan (due 6 Jan) for a Rapid Review
  on the longer clocks: police's information on Tue 19 Jan (due 19 Jan, on time), health's not
  (overdue); the meeting due Tue 26 Jan.
- SR-2027-0002, referred Thu 7 Jan: abuse not suspected; decided Fri 8 Jan (due 8 Jan) for no
  further action, so closed.
- SR-2027-0003, referred Wed 20 Jan: awaiting the DSPs, due Thu 21 Jan.

The clock is left at noon on Thu 21 Jan 2027, the day the tests look from (`AS_OF`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from models.clock import FixedClock
from models.enums import Interface
from models.forms import parse_referral
from models.processes import StepId
from models.schedules import Period
from tasks.service import Actor, CaseService
from tests.conftest import EXAMPLE_REFERRAL, SIGNATURES, STEP_FORMS

AS_OF = date(2027, 1, 21)
YEAR = Period(date(2026, 4, 1), date(2027, 3, 31))
OFFICER = Actor("sbu-officer", Interface.CLI)
EARLIER, NOTIFIED, NEAR_MISS, CLOSED, AWAITING = (
    "SR-2026-0001", "SR-2026-0002", "SR-2027-0001", "SR-2027-0002", "SR-2027-0003")


@dataclass
class Driver:
    service: CaseService
    clock: FixedClock
    actor: Actor = OFFICER

    def on(self, day: date) -> Driver:
        self.clock.advance(datetime.combine(day, time(12, 0), tzinfo=UTC) - self.clock.now())
        return self

    def refer(self, **changes: Any) -> str:
        data = copy.deepcopy(EXAMPLE_REFERRAL)
        data.update(changes)
        return self.service.refer(parse_referral(data, now=self.clock.now()), actor=self.actor).case_ref

    def record(self, case_ref: str, step: str, **values: Any) -> None:
        form = STEP_FORMS[StepId(step)].model_validate(values)
        self.service.record(case_ref, step, form, actor=self.actor)

    def act(self, case_ref: str, name: str, **values: Any) -> None:
        act = self.service.registry.act(name)
        assert act is not None
        self.service.act(case_ref, name, act.form.model_validate(values), actor=self.actor)

    def decide(self, case_ref: str, *, sin: bool, rapid_review: bool) -> None:
        self.record(case_ref, StepId.DSP_DECISION, sin=sin, rapid_review=rapid_review,
                    rationale="Criteria considered on the facts known.", decided_on=self.clock.now().date(),
                    **SIGNATURES)


def drive_cases(service: CaseService, clock: FixedClock) -> None:
    """Make the five cases above; leave the clock at noon on `AS_OF`."""
    run = Driver(service, clock)
    today = run.on
    today(date(2026, 3, 31))
    assert run.refer(external_ref="POL-2026-0331", incident_date="2026-03-29", la_aware_date="2026-03-30",
                     referred_at="2026-03-31T10:00:00+00:00") == EARLIER

    today(date(2026, 12, 23))
    assert run.refer() == NOTIFIED
    run.decide(NOTIFIED, sin=True, rapid_review=True)
    today(date(2026, 12, 29))
    run.record(NOTIFIED, StepId.SIN_SUBMISSION, national_ref="CSIN-2026-0042",
               completed_on=date(2026, 12, 29))
    today(date(2027, 1, 4))
    run.record(NOTIFIED, StepId.PARTNERS_INFORMED, completed_on=date(2027, 1, 4))

    today(date(2027, 1, 5))
    assert run.refer(external_ref="NM-2027-0105", category="near-miss", incident_date="2027-01-04",
                     la_aware_date="2027-01-04", referred_at="2027-01-05T10:00:00+00:00",
                     agencies_involved=["police", "health"]) == NEAR_MISS
    run.decide(NEAR_MISS, sin=False, rapid_review=True)

    today(date(2027, 1, 6))
    run.record(NOTIFIED, StepId.RR_AGENCY_RESPONSES, agency="police", completed_on=date(2027, 1, 6))
    today(date(2027, 1, 7))
    assert run.refer(external_ref="EDU-2027-0107", referring_agency="education",
                     abuse_or_neglect="not-suspected", incident_date="2027-01-06", la_aware_date="2027-01-06",
                     referred_at="2027-01-07T10:00:00+00:00") == CLOSED
    today(date(2027, 1, 8))
    run.record(NOTIFIED, StepId.RR_AGENCY_RESPONSES, agency="health", completed_on=date(2027, 1, 8))
    run.decide(CLOSED, sin=False, rapid_review=False)
    today(date(2027, 1, 11))
    run.record(NOTIFIED, StepId.RR_AGENCY_RESPONSES, agency="children-social-care",
               completed_on=date(2027, 1, 11))
    run.record(NOTIFIED, StepId.RR_MEETING, completed_on=date(2027, 1, 11))

    today(date(2027, 1, 13))
    run.record(NOTIFIED, StepId.RR_OUTCOME, immediate_actions="Siblings seen; plan reviewed.",
               learning="Information was not shared at discharge.", recommendation="local-cspr",
               rationale="Systemic learning across agencies.", decided_on=date(2027, 1, 13), **SIGNATURES)
    run.act(NOTIFIED, "action-added", source="rapid-review", agency="health", owner_role="Named Nurse",
            summary="Audit discharge planning.", due=date(2027, 1, 20))
    today(date(2027, 1, 14))
    run.act(NOTIFIED, "action-added", source="rapid-review", agency="police",
            owner_role="Detective Inspector", summary="Brief the team on referral thresholds.",
            due=date(2027, 3, 31))

    today(date(2027, 1, 19))
    run.record(NEAR_MISS, StepId.RR_AGENCY_RESPONSES, agency="police", completed_on=date(2027, 1, 19))
    today(date(2027, 1, 20))
    assert run.refer(external_ref="POL-2027-0120", incident_date="2027-01-19", la_aware_date="2027-01-19",
                     referred_at="2027-01-20T09:00:00+00:00") == AWAITING
    run.record(NOTIFIED, StepId.CSPR_REVIEWER_APPOINTED, reviewers=["Pat Reviewer"],
               completed_on=date(2027, 1, 20))
    today(AS_OF)
