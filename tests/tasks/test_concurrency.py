"""Many changes at once, straight at the case service, on SQLite and PostgreSQL.

Threads started together by a barrier race conflicting DSP decisions on the same case, records of
the same step, and timer passes firing the step's deadline timers while it is recorded, on several cases at
once. Whatever the interleaving: exactly one of two conflicting decisions wins and the other is
refused with a clear error, a step is recorded once, no change is half-written (each case's rows
of every table are exactly those of the same change made alone), no error but a refusal reaches
the caller (no deadlock, no "database is locked", no integrity error), and the audit chain is
whole. This is cheaper than the end-to-end test (tests/flows/test_concurrency_e2e.py) and, with no
Prefect or process start in between, hits the race far harder.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select

from models import schema
from models.clock import FixedClock
from models.enums import Interface, ReviewRoute
from models.errors import Refused
from models.forms import (
    AgencyResponseForm,
    DspDecisionForm,
    MeetingHeldForm,
    PartnersInformedForm,
    RapidReviewOutcomeForm,
    SinSubmissionForm,
    parse_referral,
)
from models.processes import StepId
from tasks.service import Actor, CaseService
from tasks.store.audit import verify_audit_chain
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL, SIGNATURES
from tests.figures import record_figure

CASES = 6
RACERS = 6  # threads per case, half of them with one answer and half with the other
ROUNDS = 3
CLI = Actor("sbu-officer", Interface.CLI)
UI = Actor("dashboard-user", Interface.PREFECT_UI)
DAY = date(2026, 12, 23)
PER_CASE_TABLES = ("decisions", "items", "records", "audit_events", "outbox", "timers", "case_runs")


def referral(n: int) -> Any:
    return parse_referral(dict(copy.deepcopy(EXAMPLE_REFERRAL), external_ref=f"POL-RACE-{n}"),
                          now=EXAMPLE_NOW)


def decision(*, sin: bool) -> DspDecisionForm:
    return DspDecisionForm.model_validate({"sin": sin, "rapid_review": sin,
                                           "rationale": f"Race {'with' if sin else 'without'} a SIN.",
                                           **SIGNATURES, "decided_on": DAY})


def rows_of(service: CaseService, case_ref: str) -> dict[str, int]:
    """How many rows each table holds for the case."""
    with service.store.engine.connect() as connection:
        case_id = connection.execute(select(schema.cases.c.id).where(
            schema.cases.c.case_ref == case_ref)).scalar_one()
        return {name: int(connection.execute(
            select(func.count()).select_from(schema.metadata.tables[name])
            .where(schema.metadata.tables[name].c.case_id == case_id)).scalar_one())
            for name in PER_CASE_TABLES}


@dataclass
class Race:
    """Calls started together; each one's result or the exception it raised."""

    results: list[tuple[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, calls: list[tuple[str, Callable[[], Any]]]) -> float:
        start = threading.Barrier(len(calls))

        def one(label: str, call: Callable[[], Any]) -> None:
            start.wait()
            try:
                outcome: Any = call()
            except BaseException as error:  # noqa: BLE001 - every failure is judged by the test
                outcome = error
            with self.lock:
                self.results.append((label, outcome))

        threads = [threading.Thread(target=one, args=call) for call in calls]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a racing change never returned"
        return time.monotonic() - began

    def unexpected(self) -> list[str]:
        """Anything raised that is not a refusal: a deadlock, a lock timeout, an integrity error."""
        return [f"{label}: {type(outcome).__name__}: {outcome}" for label, outcome in self.results
                if isinstance(outcome, BaseException) and not isinstance(outcome, Refused)]


def baselines(service: CaseService) -> dict[bool, dict[str, int]]:
    """Each case's rows after one decision (with and without a SIN) made alone."""
    found = {}
    for n, sin in enumerate((True, False)):
        ref = service.refer(referral(1000 + n), actor=CLI).case_ref
        service.decide(ref, decision(sin=sin), actor=CLI)
        found[sin] = rows_of(service, ref)
    return found


def dialect(service: CaseService) -> str:
    return service.store.engine.dialect.name


def test_conflicting_decisions_racing_on_many_cases_give_one_winner_each(service: CaseService) -> None:
    alone = baselines(service)
    refs = [service.refer(referral(n), actor=CLI).case_ref for n in range(CASES)]
    race = Race()
    calls: list[tuple[str, Callable[[], Any]]] = []
    for ref in refs:
        for n in range(RACERS):
            sin, actor = n % 2 == 0, CLI if n % 3 else UI
            calls.append((f"{ref} sin={sin} #{n}",
                          partial(service.decide, ref, decision(sin=sin), actor=actor)))
    took = race.run(calls)

    problems = [*race.unexpected()]
    refused_in_all = 0
    for ref in refs:
        winner = service.case_view(ref).decision
        mine = [(label, outcome) for label, outcome in race.results if label.startswith(f"{ref} ")]
        taken = [(label, outcome) for label, outcome in mine if not isinstance(outcome, BaseException)]
        won = [label for label, outcome in taken if not outcome.already_recorded]
        refused = [(label, str(error)) for label, error in mine if isinstance(error, Refused)]
        refused_in_all += len(refused)
        if winner is None or len(won) != 1 or f"sin={winner.sin}" not in won[0]:
            problems.append(f"{ref}: winners {won}, stored {winner}")
            continue
        # The same answer again is taken as already recorded; the other one is refused, clearly.
        if len(taken) != RACERS // 2 or len(refused) != RACERS // 2:
            problems.append(f"{ref}: {len(taken)} taken, {len(refused)} refused")
        for label, message in refused:
            if f"sin={not winner.sin}" not in label or not conflict_refusal_is_clear(message):
                problems.append(f"{label}: refused as {message!r}")
        # Nothing half-written and nothing twice: the case is exactly as if decided alone.
        if rows_of(service, ref) != alone[winner.sin]:
            problems.append(f"{ref}: rows {rows_of(service, ref)}, decided alone {alone[winner.sin]}")
    record_figure(kind="load", what=f"conflicting DSP decisions racing, {CASES} cases at once, "
                                    f"at the case service ({dialect(service)})",
                  held=len(calls), refused=refused_in_all, lost=len(problems), seconds=round(took, 2))
    assert problems == []
    assert verify_audit_chain(service.store.engine).intact


def conflict_refusal_is_clear(message: str) -> bool:
    """Says the decision was already recorded and where, and echoes no value: not the refused
    rationale, not the recorded one, not a name."""
    return ("already recorded through" in message and "conflicting decision was not recorded" in message
            and "Race with" not in message and not any(s["name"] in message for s in SIGNATURES.values())
            and "sbu-officer" not in message and "dashboard-user" not in message)


def test_records_and_timer_passes_racing_on_one_step_leave_it_recorded_once(service: CaseService,
                                                                           clock: FixedClock) -> None:
    """The same steps recorded from several sides at once while timer passes fire their reminders,
    overdue alerts and escalations. A pass and a change must take their locks in one order (the
    case, then its timers): in the other, PostgreSQL found a deadlock and failed one of them. Each
    round comes later in case time, so its passes find new alerts due (the next escalation)."""
    refs = [service.refer(referral(n), actor=CLI).case_ref for n in range(CASES + ROUNDS)]
    for ref in refs:
        service.decide(ref, decision(sin=True), actor=CLI)
    # In each round one case is recorded alone, just before the race: what every case raced in that
    # round must come to, once the alerts the passes sent it are set aside.
    lones, raced = refs[:ROUNDS], refs[ROUNDS:]
    steps = (StepId.SIN_SUBMISSION, StepId.PARTNERS_INFORMED)

    def record_alone(lone: str) -> dict[str, int]:
        service.record(lone, StepId.SIN_SUBMISSION,
                       SinSubmissionForm(national_ref="CSIN-LONE", completed_on=DAY), actor=CLI)
        service.record(lone, StepId.PARTNERS_INFORMED, PartnersInformedForm(completed_on=DAY), actor=CLI)
        return without_alerts(service, lone)

    problems: list[str] = []
    held = alerts_sent = 0
    # The steps' reminders are due on Wednesday 30 December, their overdue alerts and first
    # escalations by Monday 4 January, and the second escalations on Tuesday 5th.
    moments = [datetime(2026, 12, 30, 10, tzinfo=UTC), datetime(2027, 1, 4, 10, tzinfo=UTC),
               datetime(2027, 1, 5, 10, tzinfo=UTC)]
    for round_, moment in zip(range(ROUNDS), moments, strict=True):
        clock.advance(moment - clock.now())
        alone = record_alone(lones[round_])
        race = Race()
        calls: list[tuple[str, Callable[[], Any]]] = [(f"pass {n}", service.fire_due_timers)
                                                      for n in range(2)]
        refs_now = raced[round_::ROUNDS]
        for ref in refs_now:
            for n in range(RACERS):
                step, form = ((StepId.SIN_SUBMISSION, SinSubmissionForm(national_ref=f"CSIN-{n}",
                                                                        completed_on=DAY))
                              if n % 2 == 0 else (StepId.PARTNERS_INFORMED,
                                                  PartnersInformedForm(completed_on=DAY)))
                calls.append((f"{ref} record {step} #{n}",
                              partial(service.record, ref, step, form, actor=CLI if n % 3 else UI)))
        race.run(calls)
        held += len(calls)
        problems += race.unexpected()
        for ref in refs_now:
            mine = [(label, outcome) for label, outcome in race.results
                    if label.startswith(f"{ref} ") and not isinstance(outcome, BaseException)]
            for step in steps:
                took = [label for label, outcome in mine
                        if f"record {step} " in label and not outcome.already_recorded]
                if len(took) != 1:
                    problems.append(f"{ref} {step} recorded by {took}")
            alerts = alert_rows(service, ref)
            alerts_sent += len(alerts.sent)
            # No alert of an item went out twice, whatever raced it.
            if len(set(alerts.sent)) != len(alerts.sent):
                problems.append(f"{ref}: an alert went out twice: {alerts.sent}")
            # Each alert the passes sent or superseded before its step was recorded adds its audit
            # event, its email (one for all the case's escalations of a pass), and for an
            # escalation the next one's timer; nothing else differs.
            if (rows := without_alerts(service, ref)) != alone:
                problems.append(f"{ref}: rows {rows} once its alerts are set aside, expected {alone}")
            if [t.key for t in service.timers(case_ref=ref) if t.step in steps]:
                problems.append(f"{ref}: a recorded step's timer is still scheduled")
    record_figure(kind="load", what=f"records of one step racing timer passes, "
                                    f"{len(raced)} cases, at the case service ({dialect(service)})",
                  held=held, alerts_sent=alerts_sent, lost=len(problems))
    assert problems == []
    assert alerts_sent > 0  # the passes did race the records
    assert verify_audit_chain(service.store.engine).intact


@dataclass(frozen=True)
class Alerts:
    sent: list[tuple[str, str, str, int]]  # kind, step, subject, sequence of each alert that went out
    superseded: int
    emails: int  # reminders, overdue alerts and escalations queued


def without_alerts(service: CaseService, case_ref: str) -> dict[str, int]:
    """How many rows each table holds for the case, less those the timer passes' alerts added."""
    rows, alerts = rows_of(service, case_ref), alert_rows(service, case_ref)
    return dict(rows, outbox=rows["outbox"] - alerts.emails,
                audit_events=rows["audit_events"] - len(alerts.sent) - alerts.superseded,
                timers=rows["timers"] - sum(kind == "escalation" for kind, *_ in alerts.sent))


def alert_rows(service: CaseService, case_ref: str) -> Alerts:
    """What the timer passes did to the case, from its audit trail and its outbox."""
    with service.store.engine.connect() as connection:
        case_id = connection.execute(select(schema.cases.c.id).where(
            schema.cases.c.case_ref == case_ref)).scalar_one()
        events = connection.execute(select(schema.audit_events.c.action, schema.audit_events.c.detail)
                                    .where(schema.audit_events.c.case_id == case_id)).all()
        emails = connection.execute(select(func.count()).select_from(schema.outbox).where(
            schema.outbox.c.case_id == case_id,
            schema.outbox.c.event.in_(["reminder", "overdue", "escalation"]))).scalar_one()
    sent = [(action.removesuffix("-sent"), detail["step"], detail.get("subject", ""), detail["sequence"])
            for action, detail in events
            if action in ("reminder-sent", "overdue-sent", "escalation-sent")]
    superseded = sum(1 for action, _ in events if action.endswith("-superseded"))
    return Alerts(sent=sent, superseded=superseded, emails=int(emails))


def outcome(recommendation: ReviewRoute) -> RapidReviewOutcomeForm:
    return RapidReviewOutcomeForm.model_validate({
        "immediate_actions": "Siblings seen.", "learning": "Race learning.",
        "recommendation": recommendation, "rationale": f"Race rationale for {recommendation.value}.",
        **SIGNATURES, "decided_on": DAY})


def at_the_outcome(service: CaseService, n: int) -> str:
    """A notified case whose Rapid Review meeting has been held: its outcome is the next decision."""
    ref = service.refer(referral(n), actor=CLI).case_ref
    service.decide(ref, decision(sin=True), actor=CLI)
    service.record(ref, StepId.SIN_SUBMISSION, SinSubmissionForm(national_ref=f"CSIN-{n}", completed_on=DAY),
                   actor=CLI)
    for agency in EXAMPLE_REFERRAL["agencies_involved"]:
        service.record(ref, StepId.RR_AGENCY_RESPONSES, AgencyResponseForm(agency=agency, completed_on=DAY),
                       actor=CLI)
    service.record(ref, StepId.RR_MEETING, MeetingHeldForm(completed_on=DAY), actor=CLI)
    return ref


def test_conflicting_rapid_review_outcomes_racing_give_one_winner_each(service: CaseService) -> None:
    routes = (ReviewRoute.LOCAL_CSPR, ReviewRoute.NO_CSPR)
    alone = {}
    for n, route in enumerate(routes):
        ref = at_the_outcome(service, 2000 + n)
        service.record(ref, StepId.RR_OUTCOME, outcome(route), actor=CLI)
        alone[route] = rows_of(service, ref)
    refs = [at_the_outcome(service, n) for n in range(CASES // 2)]
    race = Race()
    calls: list[tuple[str, Callable[[], Any]]] = [
        (f"{ref} {routes[n % 2].value} #{n}",
         partial(service.record, ref, StepId.RR_OUTCOME, outcome(routes[n % 2]), actor=CLI if n % 3 else UI))
        for ref in refs for n in range(RACERS)]
    race.run(calls)

    problems = [*race.unexpected()]
    for ref in refs:
        item = next(i for i in service.case_view(ref).steps if i.step == StepId.RR_OUTCOME)
        won = ReviewRoute(item.details["recommendation"])
        mine = [(label, result) for label, result in race.results if label.startswith(f"{ref} ")]
        took = [label for label, result in mine if not isinstance(result, BaseException)
                and not result.already_recorded]
        refused = [(label, str(error)) for label, error in mine if isinstance(error, Refused)]
        if len(took) != 1 or won.value not in took[0] or len(refused) != RACERS // 2:
            problems.append(f"{ref}: took {took}, refused {len(refused)}")
        problems += [f"{label}: {message!r}" for label, message in refused
                     if won.value in label or "already recorded through" not in message
                     or "Race rationale" in message or "Race learning" in message]
        if rows_of(service, ref) != alone[won]:
            problems.append(f"{ref}: rows {rows_of(service, ref)}, recorded alone {alone[won]}")
    record_figure(kind="load", what=f"conflicting Rapid Review outcomes racing, {len(refs)} cases at once, "
                                    f"at the case service ({dialect(service)})",
                  held=len(calls), lost=len(problems))
    assert problems == []
    assert verify_audit_chain(service.store.engine).intact
