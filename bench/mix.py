"""The open cases a benchmark seeds: a realistic mix of stages, each case as the dated steps an
officer would have recorded so far, and the one step recorded next when decisions are timed.

Pure: given the case's number, the working-day calendar and the moment the store is seeded as of
(`SEEDED_AS_OF`), it says what to record on which day. `bench.seed` records it through the case
service. The same number always gives the same case, so the first 100 cases of a 10,000-case store
are the 100-case store, and every prefix has the same mix.

The mix, one case in twenty each slot (`PATTERN`):
- awaiting the DSPs' decision (2 in 20);
- notification: the SIN and telling the partners open (3);
- Rapid Review with the agencies' information partly in (5, one a near miss on its longer clocks);
- Rapid Review meeting held, its outcome awaited (2);
- CSPR in progress with IMRs partly in (5);
- an action plan open after a Rapid Review that recommended no CSPR (3).
About 6% of cases are behind (`BEHIND_PER_HUNDRED`): their open items are overdue by a working day
or two, so about N/10 items are overdue, and each of them is escalated at 09:00 every working day.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

from models.calendar import WorkingDayCalendar, london_date, london_time

# The moment the seeded store stands at: a Tuesday at noon in March 2027 (no bank holiday within
# weeks; London is on GMT). Nothing is due between 09:01 and midnight, so a system started at this
# case time has nothing coming due for twelve hours; the next working day's 09:00 is the alert pass.
SEEDED_AS_OF = datetime(2027, 3, 9, 12, 0, tzinfo=UTC)
# Steps are recorded at this London time on their day; referrals arrive at 09:00.
RECORDED_AT = time(10, 0)
REFERRED_AT = time(9, 0)
BEHIND_PER_HUNDRED = 6
AGENCIES = ("police", "health", "education")
SIGNATURES: dict[str, Any] = {"dsp_la": {"name": "Dana Lee"}, "dsp_health": {"name": "Sam Patel"},
                              "dsp_police": {"name": "Alex Morgan"}}


class Kind(StrEnum):
    REFER = "refer"
    RECORD = "record"
    ACT = "act"


class Stage(StrEnum):
    AWAITING_DECISION = "awaiting-decision"
    NOTIFICATION = "notification"
    RR_RESPONSES = "rr-responses"
    RR_NEAR_MISS = "rr-near-miss"
    RR_OUTCOME = "rr-outcome"
    CSPR_IMRS = "cspr-imrs"
    ACTION_PLAN = "action-plan"


@dataclass(frozen=True, slots=True)
class Move:
    """One thing recorded: a referral, a step (`name` is the step id) or an act (`name` is the
    act), with its form's values, at `at` (case time)."""

    kind: Kind
    name: str
    values: Mapping[str, Any]
    at: datetime

    @property
    def label(self) -> str:
        subject = self.values.get("agency") or self.values.get("action")
        return f"{self.name}:{subject}" if subject else self.name


@dataclass(frozen=True, slots=True)
class CasePlan:
    """One seeded case: what is recorded before the store's moment, and the step recorded next."""

    index: int
    stage: Stage
    behind: bool
    moves: tuple[Move, ...]
    # Recorded when decisions are timed: built for the day it is recorded on.
    next_move: Callable[[date], Move] = field(compare=False, repr=False)


# A path: (working day after the referral, kind, name, the form's values given the day it is
# recorded on and the referral day). Each stage is a prefix of a path.
Values = Callable[[date, "_Days"], dict[str, Any]]
Step = tuple[int, Kind, str, Values]


@dataclass(frozen=True, slots=True)
class _Days:
    """Working days counted from a case's referral day (day 0), and the day the store stands at."""

    calendar: WorkingDayCalendar
    referred: date
    today: date
    behind: bool = False

    def day(self, offset: int) -> date:
        return self.referred if offset == 0 else self.calendar.add_working_days(self.referred, offset)


def _done(on: date, _days: _Days) -> dict[str, Any]:
    return {"completed_on": on.isoformat()}


def _decision(*, sin: bool) -> Values:
    def values(on: date, _days: _Days) -> dict[str, Any]:
        return {"sin": sin, "rapid_review": True, "rationale": "The criteria are met on the facts.",
                **SIGNATURES, "decided_on": on.isoformat()}
    return values


def _agency(agency: str) -> Values:
    def values(on: date, _days: _Days) -> dict[str, Any]:
        return {"agency": agency, "completed_on": on.isoformat()}
    return values


def _outcome(route: str) -> Values:
    def values(on: date, _days: _Days) -> dict[str, Any]:
        return {"immediate_actions": "Siblings seen; GP alerted.",
                "learning": "Information was not shared at discharge.", "recommendation": route,
                "rationale": "Learning across several agencies.", **SIGNATURES, "decided_on": on.isoformat()}
    return values


def _imr_requests(on: date, days: _Days) -> dict[str, Any]:
    return {"completed_on": on.isoformat(), "imrs_due": days.day(IMRS_DUE_DAY).isoformat()}


def _add_action(number: int) -> Values:
    def values(on: date, days: _Days) -> dict[str, Any]:
        return {"source": "rapid-review", "agency": AGENCIES[number % len(AGENCIES)],
                "owner_role": "Named Nurse", "summary": "Audit how information is shared at discharge.",
                "due": _action_due(number, days).isoformat()}
    return values


def _close_action(on: date, _days: _Days) -> dict[str, Any]:
    return {"action": "a1", "evidence_ref": "AUDIT-1", "completed_on": on.isoformat()}


IMRS_DUE_DAY = 40
ACTIONS_ADDED_DAY = 20


def _action_due(number: int, days: _Days) -> date:
    """An action's due date: after the store's day for a case on time; for a case behind, its
    first action fell due two working days after it was added, before the store's day."""
    if number == 1 and days.behind:
        return days.day(ACTIONS_ADDED_DAY + 2)
    return days.calendar.add_working_days(days.today, 10 * number)


_REFER: Step = (0, Kind.REFER, "referral", _done)
_NOTIFIED_RR: tuple[Step, ...] = (
    _REFER,
    (1, Kind.RECORD, "dsp-decision", _decision(sin=True)),
    (2, Kind.RECORD, "partners-informed", _done),
    (3, Kind.RECORD, "sin-submission",
     lambda on, _d: {"national_ref": "CSIN-2027-0001", "completed_on": on.isoformat()}),
    (4, Kind.RECORD, "rr-agency-responses", _agency("police")),
    (5, Kind.RECORD, "rr-agency-responses", _agency("health")),
    (6, Kind.RECORD, "rr-agency-responses", _agency("education")),
    (11, Kind.RECORD, "rr-meeting", _done),
)
_PANEL: tuple[Step, ...] = (
    (13, Kind.RECORD, "rr-report-to-panel", lambda on, _d: {"completed_on": on.isoformat(),
                                                             "reference": "NP-2027-01"}),
    (16, Kind.RECORD, "rr-panel-response",
     lambda on, _d: {"response": "agree", "completed_on": on.isoformat()}),
)
CSPR_PATH: tuple[Step, ...] = (
    *_NOTIFIED_RR,
    (11, Kind.RECORD, "rr-outcome", _outcome("local-cspr")),
    *_PANEL,
    (18, Kind.RECORD, "cspr-reviewer-appointed",
     lambda on, _d: {"reviewers": ["Dr Jo Reviewer"], "completed_on": on.isoformat()}),
    (20, Kind.RECORD, "cspr-imr-requests", _imr_requests),
    (22, Kind.RECORD, "cspr-terms-of-reference", _done),
    (25, Kind.RECORD, "rr-action-plan", _done),
    (32, Kind.RECORD, "cspr-imr", _agency("police")),
    (36, Kind.RECORD, "cspr-imr", _agency("health")),
    (38, Kind.RECORD, "cspr-imr", _agency("education")),
)
ACTION_PLAN_PATH: tuple[Step, ...] = (
    *_NOTIFIED_RR,
    (11, Kind.RECORD, "rr-outcome", _outcome("no-cspr")),
    *_PANEL,
    # The actions are added before the plan is recorded agreed: with nothing left open, the case
    # would close.
    (ACTIONS_ADDED_DAY, Kind.ACT, "action-added", _add_action(1)),
    (ACTIONS_ADDED_DAY, Kind.ACT, "action-added", _add_action(2)),
    (ACTIONS_ADDED_DAY + 1, Kind.RECORD, "rr-action-plan", _done),
    (ACTIONS_ADDED_DAY + 1, Kind.RECORD, "action", _close_action),
)
NEAR_MISS_PATH: tuple[Step, ...] = (
    _REFER,
    (1, Kind.RECORD, "dsp-decision", _decision(sin=False)),
    (3, Kind.RECORD, "rr-agency-responses", _agency("police")),
    (5, Kind.RECORD, "rr-agency-responses", _agency("health")),
    (7, Kind.RECORD, "rr-agency-responses", _agency("education")),
)


@dataclass(frozen=True, slots=True)
class StageSpec:
    """A stage: its path, how much of it is done (one of `done`, a prefix length), and the working
    day after the referral the store's day falls on when the case is on time and when behind."""

    path: tuple[Step, ...]
    done: tuple[int, ...]
    on_time: tuple[int, int]
    behind: tuple[int, int]
    category: str = "serious-harm"


STAGES: dict[Stage, StageSpec] = {
    # The decision is due a working day after the referral.
    Stage.AWAITING_DECISION: StageSpec(CSPR_PATH, (1,), (0, 1), (2, 3)),
    # The SIN and telling the partners are due 5 working days after the LA became aware (day 4).
    Stage.NOTIFICATION: StageSpec(CSPR_PATH, (2, 3), (2, 4), (5, 6)),
    # Each agency's information is due 5 working days after the SIN (day 8).
    Stage.RR_RESPONSES: StageSpec(CSPR_PATH, (4, 5, 6), (5, 8), (9, 10)),
    # On the near-miss clocks, 10 working days after the decision (day 11).
    Stage.RR_NEAR_MISS: StageSpec(NEAR_MISS_PATH, (2, 3, 4), (5, 11), (12, 13), category="near-miss"),
    # The outcome is due a working day after the meeting (day 12).
    Stage.RR_OUTCOME: StageSpec(CSPR_PATH, (8,), (11, 12), (13, 14)),
    # The IMRs are due on the date the panel set (day 40).
    Stage.CSPR_IMRS: StageSpec(CSPR_PATH, (15, 16, 17), (36, 40), (41, 42)),
    # The first action falls due two working days after it is added when the case is behind.
    Stage.ACTION_PLAN: StageSpec(ACTION_PLAN_PATH, (14,), (21, 45), (23, 24)),
}
PATTERN: tuple[Stage, ...] = (
    Stage.AWAITING_DECISION, Stage.RR_RESPONSES, Stage.CSPR_IMRS, Stage.NOTIFICATION, Stage.ACTION_PLAN,
    Stage.RR_RESPONSES, Stage.CSPR_IMRS, Stage.RR_OUTCOME, Stage.NOTIFICATION, Stage.CSPR_IMRS,
    Stage.RR_NEAR_MISS, Stage.ACTION_PLAN, Stage.AWAITING_DECISION, Stage.RR_RESPONSES, Stage.CSPR_IMRS,
    Stage.NOTIFICATION, Stage.RR_OUTCOME, Stage.RR_RESPONSES, Stage.ACTION_PLAN, Stage.CSPR_IMRS,
)


def is_behind(index: int) -> bool:
    """About 6 cases in 100, spread over the stages (37 and 100 share no factor)."""
    return (index * 37) % 100 < BEHIND_PER_HUNDRED


def plan_case(index: int, *, calendar: WorkingDayCalendar, as_of: datetime = SEEDED_AS_OF) -> CasePlan:
    """Case number `index` (from 0): its stage, and its moves dated so that at `as_of` it stands
    where its stage says, on time or behind."""
    stage = PATTERN[index % len(PATTERN)]
    spec = STAGES[stage]
    behind = is_behind(index)
    chooser = random.Random(index)  # noqa: S311 - a reproducible mix, not a secret
    done = chooser.choice(spec.done)
    last_day = spec.path[done - 1][0]
    low, high = spec.behind if behind else spec.on_time
    today_offset = chooser.randint(max(low, last_day), max(high, last_day))
    today = london_date(as_of)
    referred = today if today_offset == 0 else calendar.subtract_working_days(today, today_offset)
    days = _Days(calendar, referred, today, behind)
    moves = [_move(step, days, index=index, category=spec.category) for step in spec.path[:done]]
    following = spec.path[done] if done < len(spec.path) else None

    def next_move(on: date) -> Move:
        if following is None:
            raise ValueError(f"case {index} has nothing left to record")
        _offset, kind, name, values = following
        return Move(kind, name, values(on, days), london_time(on, RECORDED_AT))

    return CasePlan(index=index, stage=stage, behind=behind, moves=tuple(moves), next_move=next_move)


def _move(step: Step, days: _Days, *, index: int, category: str) -> Move:
    offset, kind, name, values = step
    on = days.day(offset)
    if kind is Kind.REFER:
        return Move(kind, name, referral(index, referred=on, category=category), london_time(on, REFERRED_AT))
    return Move(kind, name, values(on, days), london_time(on, RECORDED_AT))


def referral(index: int, *, referred: date, category: str) -> dict[str, Any]:
    """Case `index`'s referral: the LA aware the day before, the incident the day before that."""
    aware = date.fromordinal(referred.toordinal() - 1)
    incident = date.fromordinal(referred.toordinal() - 2)
    return {
        "referring_agency": AGENCIES[index % len(AGENCIES)], "external_ref": f"BENCH-{index:06d}",
        "category": category, "abuse_or_neglect": "suspected",
        "incident_date": incident.isoformat(), "la_aware_date": aware.isoformat(),
        "referred_at": london_time(referred, REFERRED_AT).isoformat(),
        "children": [{"la_record_id": f"LA-B{index:06d}", "age_years": 3 + index % 12,
                      "looked_after": False, "care_leaver": False}],
        "agencies_involved": list(AGENCIES),
    }
