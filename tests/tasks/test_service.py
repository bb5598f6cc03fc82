"""The case service against a real store (SQLite, and PostgreSQL where reachable)."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from models.clock import FixedClock
from models.enums import Agency, CasePath, CaseStatus, Interface, StepState, TimerKind, TimerState
from models.errors import NotFound, Refused
from models.forms import DspDecisionForm, MeetingHeldForm, MeetingMoveForm, SinSubmissionForm, parse_referral
from models.processes import StepId
from models.tables import AuditEvent, Case, Decision, Meeting, OutboxMessage, Record
from tasks.service import Actor, CaseService
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL, SIGNATURES

OFFICER = Actor("sbu-officer", Interface.CLI)


def referral(**changes: Any) -> Any:
    data = copy.deepcopy(EXAMPLE_REFERRAL)
    data.update(changes)
    return parse_referral(data, now=EXAMPLE_NOW)


def decision(*, sin: bool, rapid_review: bool, on: date = date(2026, 12, 23)) -> DspDecisionForm:
    return DspDecisionForm.model_validate({"sin": sin, "rapid_review": rapid_review,
                                           "rationale": "Criteria met on the facts known.", **SIGNATURES,
                                           "decided_on": on})


def count(service: CaseService, model: Any) -> int:
    with service.store.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_refer_stores_the_case_with_its_first_deadline(service: CaseService) -> None:
    outcome = service.refer(referral(), actor=OFFICER)
    assert outcome.created
    assert outcome.case_ref == "SR-2026-0001"
    view = service.case_view(outcome.case_ref)
    assert view.status is CaseStatus.AWAITING_DECISION
    [step] = view.steps
    assert (step.step, step.due, step.state) == (StepId.DSP_DECISION, date(2026, 12, 24), StepState.OPEN)
    assert count(service, OutboxMessage) == 1  # the DSPs are told, in the same transaction
    assert count(service, AuditEvent) == 2  # referred, step opened


def test_same_referral_twice_gives_one_case(service: CaseService) -> None:
    first = service.refer(referral(), actor=OFFICER)
    second = service.refer(referral(), actor=OFFICER)
    assert (second.case_ref, second.created) == (first.case_ref, False)
    assert count(service, Case) == 1
    assert count(service, OutboxMessage) == 1


def test_same_external_ref_with_other_details_is_refused_and_nothing_written(service: CaseService) -> None:
    service.refer(referral(), actor=OFFICER)
    before = (count(service, Case), count(service, AuditEvent), count(service, OutboxMessage))
    with pytest.raises(Refused, match="already referred"):
        service.refer(referral(category="death"), actor=OFFICER)
    assert (count(service, Case), count(service, AuditEvent), count(service, OutboxMessage)) == before


def test_case_references_run_in_sequence_per_year(service: CaseService) -> None:
    refs = [service.refer(referral(external_ref=f"POL-{n}"), actor=OFFICER).case_ref for n in range(3)]
    assert refs == ["SR-2026-0001", "SR-2026-0002", "SR-2026-0003"]


def test_concurrent_submissions_of_one_referral_give_one_case(service: CaseService) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            results.append(service.refer(referral(), actor=OFFICER).case_ref)
        except BaseException as error:  # noqa: BLE001 - a thread's failure is reported below
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1
    assert count(service, Case) == 1


def test_sin_decision_opens_the_notification_steps(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    outcome = service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    assert outcome.opened == (StepId.SIN_SUBMISSION, StepId.PARTNERS_INFORMED)
    view = service.case_view(ref)
    steps = {s.step: s for s in view.steps}
    assert view.path is CasePath.SIN_AND_RAPID_REVIEW
    assert steps[StepId.DSP_DECISION].state is StepState.DONE
    # LA aware Tue 22 Dec 2026; 25 and 28 Dec are bank holidays: 23, 24, 29, 30, 31 Dec.
    assert steps[StepId.SIN_SUBMISSION].due == date(2026, 12, 31)
    assert steps[StepId.PARTNERS_INFORMED].due == date(2026, 12, 31)


def test_a_second_conflicting_decision_is_refused(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    again = service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    assert again.already_recorded
    with pytest.raises(Refused, match="already has a DSP decision"):
        service.decide(ref, decision(sin=False, rapid_review=False), actor=OFFICER)


def test_looked_after_child_death_cannot_be_recorded_as_no_sin(service: CaseService) -> None:
    child = {"la_record_id": "LA-1", "age_years": 15, "looked_after": True, "care_leaver": False}
    ref = service.refer(referral(category="death", abuse_or_neglect="not-suspected", children=[child]),
                        actor=OFFICER).case_ref
    with pytest.raises(Refused, match="looked-after child must always be notified"):
        service.decide(ref, decision(sin=False, rapid_review=False), actor=OFFICER)
    assert service.case_view(ref).status is CaseStatus.AWAITING_DECISION


def test_sin_submission_starts_the_rapid_review(service: CaseService, clock: FixedClock) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    clock.advance(timedelta(days=7))
    outcome = service.record(ref, StepId.SIN_SUBMISSION,
                             SinSubmissionForm(national_ref="CSIN-1", completed_on=date(2026, 12, 29)),
                             actor=OFFICER)
    assert "rapid-review" in outcome.started
    steps = {s.label: s for s in service.case_view(ref).steps}
    # Notified Tue 29 Dec: working days 30, 31 Dec, 4, 5, 6 Jan (1 Jan is a bank holiday).
    assert steps["rr-agency-responses:police"].due == date(2027, 1, 6)
    assert steps["rr-agency-responses:education"].agency is Agency.EDUCATION
    assert steps[StepId.RR_MEETING].due == date(2027, 1, 11)
    assert steps[StepId.RR_REPORT_TO_PANEL].due == date(2027, 1, 20)


def test_recording_a_step_the_case_is_not_waiting_for_is_refused(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    with pytest.raises(Refused, match="not waiting for sin-submission"):
        service.record(ref, StepId.SIN_SUBMISSION,
                       SinSubmissionForm(national_ref="X", completed_on=date(2026, 12, 23)), actor=OFFICER)


def test_no_further_action_closes_the_case_and_cancels_timers(service: CaseService) -> None:
    ref = service.refer(referral(abuse_or_neglect="not-suspected"), actor=OFFICER).case_ref
    assert service.timers(case_ref=ref)
    service.decide(ref, decision(sin=False, rapid_review=False), actor=OFFICER)
    assert service.case_view(ref).status is CaseStatus.CLOSED
    assert service.timers(case_ref=ref) == []


def test_completing_a_step_cancels_its_timers(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    sin_timers = [t for t in service.timers(case_ref=ref) if t.step == StepId.SIN_SUBMISSION]
    assert {t.kind for t in sin_timers} == {TimerKind.REMINDER, TimerKind.OVERDUE, TimerKind.ESCALATION}
    service.record(ref, StepId.SIN_SUBMISSION,
                   SinSubmissionForm(national_ref="CSIN-1", completed_on=date(2026, 12, 23)), actor=OFFICER)
    left = [t for t in service.timers(case_ref=ref) if t.step == StepId.SIN_SUBMISSION]
    assert left == []
    # A pass after the step's alerts were due sends nothing for it: they are no longer scheduled.
    outcome = service.fire_due_timers(now=max(t.fire_at for t in sin_timers) + timedelta(minutes=1))
    assert outcome.sent > 0  # the other steps' alerts
    with service.store.reading() as session:
        details = session.scalars(select(AuditEvent.detail).where(AuditEvent.action.like("%-sent"))).all()
    assert [d for d in details if d.get("step") == StepId.SIN_SUBMISSION] == []


def outbox_events(service: CaseService, *, after: int = 0) -> list[str]:
    """The outbox's messages after id `after`, in order, each as "event dedup-key"."""
    with service.store.reading() as session:
        return [f"{event} {key}" for event, key in session.execute(
            select(OutboxMessage.event, OutboxMessage.dedup_key).where(OutboxMessage.id > after)
            .order_by(OutboxMessage.id)).tuples()]


def audit_actions(service: CaseService, ref: str) -> list[str]:
    with service.store.reading() as session:
        return list(session.scalars(select(AuditEvent.action).join(Case, Case.id == AuditEvent.case_id)
                                    .where(Case.case_ref == ref).order_by(AuditEvent.id)))


def test_an_escalation_schedules_the_next_one(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    escalation = next(t for t in service.timers(case_ref=ref) if t.kind is TimerKind.ESCALATION)
    outcome = service.fire_due_timers(now=escalation.fire_at)
    assert (outcome.cases, outcome.sent) == ((ref,), 1)
    again = service.fire_due_timers(now=escalation.fire_at)
    assert (again.cases, again.sent) == ((), 0)  # a timer fires once, however often a pass runs
    [nxt] = service.timers(case_ref=ref)
    assert (nxt.kind, nxt.sequence, nxt.state) == (TimerKind.ESCALATION, 2, TimerState.SCHEDULED)
    assert nxt.fire_at > escalation.fire_at


def test_alerts_due_together_send_only_the_latest_and_record_the_others_superseded(
        service: CaseService, clock: FixedClock) -> None:
    """After an outage, a step's overdue alert and first escalation are due together, with the
    escalations of other steps: one pass sends one escalation email for the case, listing each
    item with how late it is; the overdue alerts are recorded as superseded, and sent to nobody."""
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    planned = sorted((t for t in service.timers(case_ref=ref) if t.step == StepId.SIN_SUBMISSION),
                     key=lambda t: t.fire_at)
    assert [t.kind for t in planned] == [TimerKind.REMINDER, TimerKind.OVERDUE, TimerKind.ESCALATION]
    reminder, _overdue, escalation = planned
    assert service.fire_due_timers(now=reminder.fire_at).sent == 2  # both steps' reminders, on time
    before = count(service, OutboxMessage)
    audit_before = len(audit_actions(service, ref))

    later = escalation.fire_at + timedelta(days=3)  # the escalation's day and two more
    clock.advance(later - clock.now())
    outcome = service.fire_due_timers()
    sent = outbox_events(service, after=before)
    assert len(sent) == 1  # the case's escalations, in one email
    assert sent[0].startswith("escalation ")
    assert outcome.sent == 2  # sin-submission's and partners-informed's escalations
    assert outcome.superseded == 2  # their overdue alerts
    actions = audit_actions(service, ref)[audit_before:]
    assert actions.count("overdue-superseded") == 2
    assert actions.count("escalation-sent") == 2
    with service.store.reading() as session:
        body = session.scalars(select(OutboxMessage.body_text).where(OutboxMessage.id > before)).one()
    # Due by the end of Thursday 31 December; 1 January is a bank holiday; the pass is on Thursday 7th.
    assert body.count("overdue since Thu 31 Dec 2026, 4 working days") == 2
    # The next escalations come the working day after the pass, not the days it missed.
    assert {t.fire_at for t in service.timers(case_ref=ref) if t.kind is TimerKind.ESCALATION} == {
        datetime(2027, 1, 8, 9, 0, tzinfo=UTC)}


def test_a_pass_fires_no_timer_not_yet_due(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    reminder, overdue, escalation = sorted((t for t in service.timers(case_ref=ref)
                                            if t.step == StepId.SIN_SUBMISSION), key=lambda t: t.fire_at)
    service.fire_due_timers(now=reminder.fire_at)
    left = {t.key for t in service.timers(case_ref=ref)}
    assert reminder.key not in left
    assert {overdue.key, escalation.key} <= left


def test_audit_events_cannot_be_changed_or_deleted(service: CaseService) -> None:
    service.refer(referral(), actor=OFFICER)
    for statement in ("UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), service.store.transaction() as session:
            session.execute(text(statement))
    assert count(service, AuditEvent) == 2


def test_unknown_case_is_not_found(service: CaseService) -> None:
    with pytest.raises(NotFound):
        service.case_view("SR-2026-9999")


def test_near_miss_rapid_review_uses_longer_clocks(service: CaseService) -> None:
    ref = service.refer(referral(category="near-miss", external_ref="NM-1"), actor=OFFICER).case_ref
    outcome = service.decide(ref, decision(sin=False, rapid_review=True), actor=OFFICER)
    assert "rapid-review" in outcome.started
    steps = {s.label: s for s in service.case_view(ref).steps}
    assert StepId.RR_REPORT_TO_PANEL not in steps  # no SIN, nothing to the Panel
    # Decided Wed 23 Dec: 10 working days: 24, 29, 30, 31 Dec, 4-8 Jan, 11 Jan.
    assert steps["rr-agency-responses:health"].due == date(2027, 1, 11)
    service.record(ref, StepId.RR_MEETING, MeetingHeldForm(completed_on=date(2026, 12, 23)),
                   actor=OFFICER)


def test_what_prefect_was_never_told_is_found_in_the_store(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    assert service.cases_with_untold_runs() == [ref]
    assert service.untold_timers()  # no timer pass is planned for its timers yet
    service.set_run(ref, "case", "11111111-1111-1111-1111-111111111111")
    first = service.earliest_timer()
    assert first == min(t.fire_at for t in service.timers(case_ref=ref))
    service.mark_timers_told("22222222-2222-2222-2222-222222222222", first_due=first)
    assert service.cases_with_untold_runs() == []
    assert not service.untold_timers()
    # A done step's timers are cancelled in the store while the pass planned for them still waits.
    service.record(ref, StepId.DSP_DECISION, decision(sin=False, rapid_review=False), actor=OFFICER)
    assert service.untold_timers()
    assert service.earliest_timer() is None
    service.mark_timers_told(None, first_due=None)
    assert not service.untold_timers()
    assert service.cases_with_untold_runs() == []  # closed: nothing left to tell


def test_every_form_is_kept_whole_in_the_store_with_who_and_how(service: CaseService) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=Actor("Dana Duty", Interface.PREFECT_UI))
    with service.store.reading() as session:
        [record] = session.scalars(select(Record)).all()
        decision_row = session.scalars(select(Decision)).one()
    assert (record.kind, record.process, record.recorded_by, record.recorded_via) == (
        StepId.DSP_DECISION, "case", "Dana Duty", Interface.PREFECT_UI)
    assert record.form_values["rationale"] == "Criteria met on the facts known."
    assert record.form_values["dsp_la"] == {"name": "Dana Lee", "deputy": False}
    assert decision_row.sign_off["sign_off"][2] == {"role": "dsp-police", "name": "Alex Morgan",
                                                   "deputy": False}
    # The item keeps only structured values: no rationale, no names.
    item = service.case_view(ref).item(StepId.DSP_DECISION)
    assert item is not None
    assert item.details == {"sin": True, "rapid_review": True, "deputies": []}
    assert service.case_view(ref).record_counts == {StepId.DSP_DECISION: 1}


def test_the_meeting_is_kept_as_arranged_and_moved(service: CaseService, clock: FixedClock) -> None:
    ref = service.refer(referral(), actor=OFFICER).case_ref
    service.decide(ref, decision(sin=True, rapid_review=True), actor=OFFICER)
    clock.advance(timedelta(days=6))
    service.record(ref, StepId.SIN_SUBMISSION,
                   SinSubmissionForm(national_ref="CSIN-1", completed_on=date(2026, 12, 29)), actor=OFFICER)
    meeting = service.case_view(ref).meeting
    assert meeting is not None
    assert (meeting.sequence, meeting.place) == (0, "Online: the SBU sends the link")
    outcome = service.act(ref, "rr-meeting-moved", MeetingMoveForm(
        meeting_on=date(2027, 1, 12), start_time="09:30", place="Town Hall, Room 3",
        reason="The chair is away on the 11th."), actor=OFFICER)
    assert outcome.retimed == (StepId.RR_MEETING,)
    view = service.case_view(ref)
    assert view.meeting is not None
    assert (view.meeting.sequence, view.meeting.place) == (1, "Town Hall, Room 3")
    assert view.item(StepId.RR_MEETING).due == date(2027, 1, 12)  # type: ignore[union-attr]
    with service.store.reading() as session:
        assert session.get_one(Meeting, session.scalars(select(Case.id)).one()).sequence == 1
        invitations = session.scalars(select(OutboxMessage.dedup_key)
                                      .where(OutboxMessage.event == "rr-meeting-invitation")).all()
    assert sorted(invitations) == [f"rr-meeting-invitation:{ref}:0", f"rr-meeting-invitation:{ref}:1"]
