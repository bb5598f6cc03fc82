"""The case service: every change to a case, each in one transaction.

A change is validated by the domain (`models`), then written as one unit: the state change, its
audit event, the emails it causes (outbox rows) and the deadline timers it needs. Only after the
commit is Prefect told (`sbu.prefect_bridge`); if that fails, the reconciliation sweep repairs it.
Both the CLI and the flows call these methods, so a rule is enforced the same way from either side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.alerts import PlannedAlert, next_escalation, planned_alerts
from models.calendar import end_of_london_day, london_date
from models.enums import (
    CasePath,
    CaseStatus,
    Category,
    Interface,
    StepId,
    StepState,
    TimerKind,
    TimerState,
)
from models.forms import (
    AgencyResponseForm,
    DspDecisionForm,
    Referral,
    SinSubmissionForm,
    StepCompletionForm,
)
from models.rules import (
    CaseFacts,
    case_path,
    dsp_decision_refusals,
    rapid_review_starts_at_decision,
)
from models.tables import (
    AuditEvent,
    Case,
    CaseAgency,
    CaseChild,
    CaseSequence,
    Decision,
    Step,
    Timer,
)
from models.timetable import STEP_RULES, Deadline, deadline, rapid_review_timetable
from sbu.clock import Clock
from sbu.db import Store
from sbu.errors import Refused
from sbu.queries import CaseView, case_view, case_views, no_such_case
from sbu.settings import Settings

if TYPE_CHECKING:
    from sbu.mail.directory import Directory
    from sbu.mail.messages import EmailDraft

SIN_STEPS = (StepId.SIN_SUBMISSION, StepId.PARTNERS_INFORMED)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change and through which interface: every audit event carries both."""

    name: str
    via: Interface


SYSTEM = Actor("system", Interface.SYSTEM)


@dataclass(frozen=True, slots=True)
class ReferOutcome:
    case_ref: str
    created: bool


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """What a decision or a step record did: the steps it opened and whether the case closed."""

    case_ref: str
    already_recorded: bool = False
    opened: tuple[StepId, ...] = ()
    completed: tuple[StepId, ...] = ()
    closed: bool = False
    rapid_review_started: bool = False


@dataclass(frozen=True, slots=True)
class TimerView:
    case_ref: str
    key: str
    step: StepId
    kind: TimerKind
    sequence: int
    fire_at: datetime
    state: TimerState
    flow_run_id: str | None


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    fired: bool
    reason: str
    case_ref: str | None = None
    next_timer_key: str | None = None


def fingerprint(referral: Referral) -> str:
    return hashlib.sha256(referral.model_dump_json().encode()).hexdigest()


def facts_of(case: Case) -> CaseFacts:
    return CaseFacts(
        category=case.category,
        abuse_or_neglect=case.abuse_or_neglect,
        looked_after_child=any(child.looked_after for child in case.children),
        care_leaver=any(child.care_leaver for child in case.children),
    )


def timer_key(case_ref: str, step: StepId, kind: TimerKind, sequence: int, due: date) -> str:
    """Stable and Prefect-safe (lowercase letters, digits and dashes): also the idempotency key
    of the deadline-check run, so a timer can be scheduled any number of times and exist once."""
    return f"{case_ref.lower()}-{step.value}-{kind.value}-{sequence}-{due.strftime('%Y%m%d')}"


class CaseService:
    def __init__(self, *, store: Store, settings: Settings, clock: Clock,
                 directory: Directory | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._directory = directory
        self.calendar = settings.calendar()

    @cached_property
    def directory(self) -> Directory:
        if self._directory is not None:
            return self._directory
        from sbu.mail.directory import load_directory

        return load_directory(self.settings.directory_file)

    # -- commands --------------------------------------------------------------------------------

    def refer(self, referral: Referral, *, actor: Actor) -> ReferOutcome:
        """Store a referral as a case with its first step. The same referring agency and external
        reference give the same case; with different details they are refused."""
        for _attempt in range(3):
            try:
                with self.store.transaction() as session:
                    return self._refer(session, referral, actor=actor)
            except IntegrityError:
                # Two submissions raced on the referral key or the case sequence: look again.
                continue
        raise Refused("the referral could not be stored after three attempts; try again")

    def _refer(self, session: Session, referral: Referral, *, actor: Actor) -> ReferOutcome:
        digest = fingerprint(referral)
        existing = session.scalars(
            select(Case).where(Case.partnership == self.settings.partnership,
                               Case.referring_agency == referral.referring_agency,
                               Case.external_ref == referral.external_ref)
        ).one_or_none()
        if existing is not None:
            if existing.fingerprint != digest:
                raise Refused(f"{referral.referring_agency.value} has already referred this "
                              f"external reference as {existing.case_ref}, with different details; "
                              "nothing was written")
            return ReferOutcome(existing.case_ref, created=False)

        now = self.clock.now()
        case = Case(
            case_ref=self._next_case_ref(session, referral.referred_on.year),
            partnership=self.settings.partnership,
            referring_agency=referral.referring_agency, external_ref=referral.external_ref,
            fingerprint=digest, category=referral.category,
            abuse_or_neglect=referral.abuse_or_neglect, status=CaseStatus.AWAITING_DECISION,
            path=None, incident_on=referral.incident_date, la_aware_on=referral.la_aware_date,
            referred_at=referral.referred_at, referred_on=referral.referred_on, created_at=now,
        )
        case.children = [
            CaseChild(position=index, la_record_id=child.la_record_id, age_years=child.age_years,
                      looked_after=child.looked_after, care_leaver=child.care_leaver)
            for index, child in enumerate(referral.children)
        ]
        case.agencies = [CaseAgency(agency=agency) for agency in referral.agencies_involved]
        session.add(case)
        session.flush()
        self._audit(session, case, actor, "case-referred",
                    {"category": case.category.value, "children": len(case.children)})
        decision_due = self._open_step(session, case, StepId.DSP_DECISION,
                                       anchor_date=case.referred_on, actor=actor, notify_owner=False)
        from sbu.mail.messages import referral_received_email

        self._queue(session, case, referral_received_email(
            case_ref=case.case_ref, due_at=end_of_london_day(decision_due.due),
            directory=self.directory, dashboard_url=self.settings.dashboard_url))
        return ReferOutcome(case.case_ref, created=True)

    def decide(self, case_ref: str, form: DspDecisionForm, *, actor: Actor) -> ChangeOutcome:
        """Record the DSPs' decision and set the case on its path. The same decision again is
        accepted as already recorded; a different one is refused."""
        with self.store.transaction() as session:
            case = self._case(session, case_ref, for_update=True)
            previous = session.scalars(select(Decision).where(Decision.case_id == case.id)).one_or_none()
            if previous is not None:
                if (previous.sin, previous.rapid_review) == (form.sin, form.rapid_review):
                    return ChangeOutcome(case_ref, already_recorded=True)
                raise Refused(f"{case_ref} already has a DSP decision (SIN: {_yes(previous.sin)}, "
                              f"Rapid Review: {_yes(previous.rapid_review)}), recorded by "
                              f"{previous.recorded_by}; a conflicting decision was not recorded")
            refusals = dsp_decision_refusals(facts_of(case), sin=form.sin, rapid_review=form.rapid_review)
            if refusals:
                raise Refused(f"{case_ref}: the decision was not recorded: {'; '.join(refusals)}")
            if form.decided_on < case.referred_on or form.decided_on > london_date(self.clock.now()):
                raise Refused("decided_on must lie between the referral date and today")
            path = case_path(facts_of(case), sin=form.sin, rapid_review=form.rapid_review)
            session.add(Decision(
                case_id=case.id, sin=form.sin, rapid_review=form.rapid_review, path=path,
                rationale=form.rationale, dsps_present={"names": list(form.dsps_present)},
                decided_on=form.decided_on, recorded_at=self.clock.now(),
                recorded_by=actor.name, recorded_via=actor.via,
            ))
            case.path = path
            case.decided_on = form.decided_on
            case.status = CaseStatus.IN_PROGRESS
            self._complete_step(session, case, StepId.DSP_DECISION, completed_on=form.decided_on,
                                actor=actor, details={"sin": form.sin, "rapid_review": form.rapid_review})
            self._audit(session, case, actor, "dsp-decision-recorded",
                        {"sin": form.sin, "rapid_review": form.rapid_review, "path": path.value})
            from sbu.mail.messages import decision_recorded_email

            self._queue(session, case, decision_recorded_email(
                case_ref=case.case_ref, path=path, directory=self.directory,
                dashboard_url=self.settings.dashboard_url))
            opened: list[StepId] = []
            closed = False
            match path:
                case CasePath.SIN_AND_RAPID_REVIEW | CasePath.SIN_ONLY:
                    for step in SIN_STEPS:
                        self._open_step(session, case, step, anchor_date=case.la_aware_on, actor=actor)
                        opened.append(step)
                case CasePath.RAPID_REVIEW_ONLY | CasePath.NEAR_MISS_RAPID_REVIEW:
                    case.notified_on = form.decided_on
                    opened += self._open_rapid_review(session, case, actor=actor)
                case CasePath.NO_FURTHER_ACTION:
                    self._close(session, case, actor=actor, reason="no further action (DSP decision)")
                    closed = True
                case _:
                    raise AssertionError(f"unhandled path {path}")
            return ChangeOutcome(case_ref, opened=tuple(opened), completed=(StepId.DSP_DECISION,),
                                 closed=closed,
                                 rapid_review_started=rapid_review_starts_at_decision(path))

    def record(self, case_ref: str, step: StepId,
               form: SinSubmissionForm | StepCompletionForm | AgencyResponseForm,
               *, actor: Actor) -> ChangeOutcome:
        """Record a human step as done (or, for agency responses, one agency's part of it)."""
        with self.store.transaction() as session:
            case = self._case(session, case_ref, for_update=True)
            row = self._step(session, case, step)
            if row is None or row.state is StepState.CANCELLED:
                waiting = ", ".join(s.step.value for s in case.steps if s.state is StepState.OPEN)
                raise Refused(f"{case_ref} is not waiting for {step.value} "
                              f"(open steps: {waiting or 'none'})")
            if form.completed_on > london_date(self.clock.now()):
                raise Refused("completed_on is in the future")
            if form.completed_on < row.anchor_on and step is not StepId.CSPR_REPORT_TO_PANEL:
                raise Refused(f"completed_on is before the step's clock started ({row.anchor_on})")
            if row.state is StepState.DONE:
                return ChangeOutcome(case_ref, already_recorded=True)
            opened: list[StepId] = []
            completed: list[StepId] = []
            rapid_review_started = False
            closed = False
            match form:
                case AgencyResponseForm():
                    if not self._record_agency_response(session, case, form, actor=actor):
                        return ChangeOutcome(case_ref, already_recorded=True)
                    if all(agency.responded_on for agency in case.agencies):
                        self._complete_step(session, case, step, completed_on=form.completed_on,
                                            actor=actor, details={})
                        completed.append(step)
                case SinSubmissionForm():
                    case.sin_submitted_on = form.completed_on
                    case.notified_on = form.completed_on
                    self._complete_step(session, case, step, completed_on=form.completed_on,
                                        actor=actor, details={"national_ref": form.national_ref})
                    completed.append(step)
                    if case.path is CasePath.SIN_AND_RAPID_REVIEW:
                        opened += self._open_rapid_review(session, case, actor=actor)
                        rapid_review_started = True
                case StepCompletionForm():
                    if step is StepId.RR_MEETING:
                        case.meeting_on = form.completed_on
                    self._complete_step(session, case, step, completed_on=form.completed_on,
                                        actor=actor, details={"reference": form.reference})
                    completed.append(step)
                case _:
                    raise AssertionError("unhandled form")
            if case.path is CasePath.SIN_ONLY and all(
                    self._is_done(session, case, s) for s in SIN_STEPS):
                self._close(session, case, actor=actor, reason="notified; no Rapid Review required")
                closed = True
            return ChangeOutcome(case_ref, opened=tuple(opened), completed=tuple(completed),
                                 closed=closed, rapid_review_started=rapid_review_started)

    def ensure_rapid_review_open(self, case_ref: str) -> tuple[StepId, ...]:
        """Open the Rapid Review's steps if they are not open yet (the Rapid Review flow's first
        act; normally already done in the transaction that notified the case)."""
        with self.store.transaction() as session:
            case = self._case(session, case_ref, for_update=True)
            if case.notified_on is None:
                raise Refused(f"{case_ref} has not been notified: the Rapid Review cannot start")
            return tuple(self._open_rapid_review(session, case, actor=SYSTEM))

    def fire_timer(self, key: str) -> TimerOutcome:
        """A deadline-check run has come due: send its alert if the step is still open, and
        schedule the next escalation. Quiet (and harmless) if the step is done or the timer ran."""
        with self.store.transaction() as session:
            timer = session.scalars(select(Timer).where(Timer.key == key).with_for_update()).one_or_none()
            if timer is None:
                return TimerOutcome(False, "unknown timer")
            if timer.state is not TimerState.SCHEDULED:
                return TimerOutcome(False, f"timer already {timer.state.value}")
            case = session.get_one(Case, timer.case_id)
            step = self._step(session, case, timer.step)
            timer.fired_at = self.clock.now()
            if step is None or step.state is not StepState.OPEN:
                timer.state = TimerState.CANCELLED
                return TimerOutcome(False, "step no longer open", case_ref=case.case_ref)
            timer.state = TimerState.FIRED
            self._queue(session, case, self._alert_email(case, step, timer))
            self._audit(session, case, SYSTEM, f"{timer.kind.value}-sent",
                        {"step": step.step.value, "due": step.due_on.isoformat(),
                         "sequence": timer.sequence})
            if timer.kind is not TimerKind.ESCALATION:
                return TimerOutcome(True, f"{timer.kind.value} queued", case_ref=case.case_ref)
            nxt = next_escalation(after=london_date(timer.fire_at), sequence=timer.sequence + 1,
                                  calendar=self.calendar, policy=self.settings.alerts)
            if nxt is None:
                return TimerOutcome(True, "last escalation queued", case_ref=case.case_ref)
            return TimerOutcome(True, "escalation queued", case_ref=case.case_ref,
                                next_timer_key=self._add_timer(session, case, step, nxt).key)

    def mark_timer_scheduled(self, key: str, flow_run_id: str) -> None:
        with self.store.transaction() as session:
            timer = session.scalars(select(Timer).where(Timer.key == key)).one()
            timer.flow_run_id = flow_run_id

    def set_flow_run(self, case_ref: str, flow_run_id: str) -> None:
        with self.store.transaction() as session:
            self._case(session, case_ref).flow_run_id = flow_run_id

    def set_rapid_review_run(self, case_ref: str, flow_run_id: str) -> None:
        with self.store.transaction() as session:
            self._case(session, case_ref).rapid_review_run_id = flow_run_id

    def timer_runs_to_cancel(self, *, case_ref: str | None = None) -> list[TimerView]:
        """Cancelled timers whose deadline-check run may still be waiting in Prefect."""
        return [t for t in self.timers(case_ref=case_ref, states=(TimerState.CANCELLED,))
                if t.flow_run_id is not None]

    def forget_timer_run(self, key: str) -> None:
        with self.store.transaction() as session:
            session.scalars(select(Timer).where(Timer.key == key)).one().flow_run_id = None

    # -- queries ---------------------------------------------------------------------------------

    def case_view(self, case_ref: str) -> CaseView:
        return case_view(self.store.engine, partnership=self.settings.partnership, case_ref=case_ref,
                         today=london_date(self.clock.now()))

    def list_cases(self) -> list[CaseView]:
        return case_views(self.store.engine, partnership=self.settings.partnership,
                          today=london_date(self.clock.now()))

    def timers(self, *, case_ref: str | None = None,
               states: Iterable[TimerState] = (TimerState.SCHEDULED,)) -> list[TimerView]:
        with self.store.reading() as session:
            query = (select(Timer, Case.case_ref).join(Case, Case.id == Timer.case_id)
                     .where(Timer.state.in_(list(states)), Case.partnership == self.settings.partnership)
                     .order_by(Timer.fire_at, Timer.id))
            if case_ref is not None:
                query = query.where(Case.case_ref == case_ref)
            return [TimerView(case_ref=ref, key=t.key, step=t.step, kind=t.kind, sequence=t.sequence,
                              fire_at=t.fire_at, state=t.state, flow_run_id=t.flow_run_id)
                    for t, ref in session.execute(query).all()]

    def cases_missing_runs(self) -> list[str]:
        with self.store.reading() as session:
            return list(session.scalars(
                select(Case.case_ref).where(Case.partnership == self.settings.partnership,
                                            Case.flow_run_id.is_(None))
            ).all())

    def facts(self, case_ref: str) -> CaseFacts:
        with self.store.reading() as session:
            return facts_of(self._case(session, case_ref))

    # -- internals -------------------------------------------------------------------------------

    def _case(self, session: Session, case_ref: str, *, for_update: bool = False) -> Case:
        query = select(Case).where(Case.case_ref == case_ref,
                                   Case.partnership == self.settings.partnership)
        if for_update:
            query = query.with_for_update()
        case = session.scalars(query).one_or_none()
        if case is None:
            raise no_such_case(case_ref, self.settings.partnership)
        return case

    def _step(self, session: Session, case: Case, step: StepId) -> Step | None:
        return session.scalars(
            select(Step).where(Step.case_id == case.id, Step.step == step)).one_or_none()

    def _is_done(self, session: Session, case: Case, step: StepId) -> bool:
        row = self._step(session, case, step)
        return row is not None and row.state is StepState.DONE

    def _next_case_ref(self, session: Session, year: int) -> str:
        key = (self.settings.partnership, self.settings.case_ref_prefix, year)
        sequence = session.get(CaseSequence, key, with_for_update=True)
        if sequence is None:
            sequence = CaseSequence(partnership=key[0], prefix=key[1], year=year, last=0)
            session.add(sequence)
        sequence.last += 1
        return f"{self.settings.case_ref_prefix}-{year}-{sequence.last:04d}"

    def _open_step(self, session: Session, case: Case, step: StepId, *, anchor_date: date,
                   actor: Actor, notify_owner: bool = True, near_miss: bool = False,
                   planned: Deadline | None = None) -> Deadline:
        existing = self._step(session, case, step)
        row = planned or deadline(step, anchor_date=anchor_date, clocks=self.settings.clocks,
                                  calendar=self.calendar, near_miss=near_miss)
        if existing is not None:
            return row
        now = self.clock.now()
        opened = Step(case_id=case.id, step=step, state=StepState.OPEN, anchor_on=row.anchor_date,
                      due_on=row.due, rule=row.rule, opened_at=now)
        session.add(opened)
        session.flush()
        self._audit(session, case, actor, "step-opened", {"step": step.value, "due": row.due.isoformat()})
        for alert in planned_alerts(due=row.due, now=now, calendar=self.calendar,
                                    policy=self.settings.alerts):
            self._add_timer(session, case, opened, alert)
        if notify_owner:
            from sbu.mail.messages import step_opened_email

            self._queue(session, case, step_opened_email(
                case_ref=case.case_ref, step=step, due=row.due, owner=STEP_RULES[step].owner,
                directory=self.directory, dashboard_url=self.settings.dashboard_url))
        return row

    def _open_rapid_review(self, session: Session, case: Case, *, actor: Actor) -> list[StepId]:
        assert case.notified_on is not None
        near_miss = case.category is Category.NEAR_MISS
        opened: list[StepId] = []
        for row in rapid_review_timetable(notified=case.notified_on, sin_submitted=case.sin_submitted_on,
                                          clocks=self.settings.clocks, calendar=self.calendar,
                                          near_miss=near_miss):
            if self._step(session, case, row.step) is not None:
                continue
            self._open_step(session, case, row.step, anchor_date=row.anchor_date, actor=actor,
                            planned=row, notify_owner=row.step is not StepId.RR_AGENCY_RESPONSES)
            opened.append(row.step)
            if row.step is StepId.RR_AGENCY_RESPONSES:
                from sbu.mail.messages import rr_information_request_email

                for agency in case.agencies:
                    self._queue(session, case, rr_information_request_email(
                        case_ref=case.case_ref, agency=agency.agency, due=row.due,
                        directory=self.directory, dashboard_url=self.settings.dashboard_url))
        return opened

    def _record_agency_response(self, session: Session, case: Case, form: AgencyResponseForm,
                                *, actor: Actor) -> bool:
        involved = {agency.agency: agency for agency in case.agencies}
        if form.agency not in involved:
            raise Refused(f"{form.agency.value} is not an agency involved in {case.case_ref} "
                          f"(involved: {', '.join(sorted(a.value for a in involved))})")
        row = involved[form.agency]
        if row.responded_on is not None:
            return False
        row.responded_on = form.completed_on
        self._audit(session, case, actor, "agency-response-recorded",
                    {"agency": form.agency.value, "on": form.completed_on.isoformat()})
        return True

    def _complete_step(self, session: Session, case: Case, step: StepId, *, completed_on: date,
                       actor: Actor, details: dict[str, Any]) -> None:
        row = self._step(session, case, step)
        assert row is not None
        row.state = StepState.DONE
        row.completed_on = completed_on
        row.completed_at = self.clock.now()
        row.completed_by = actor.name
        row.completed_via = actor.via
        row.details = details
        self._cancel_timers(session, case, step)
        self._audit(session, case, actor, "step-completed",
                    {"step": step.value, "on": completed_on.isoformat(),
                     "late": completed_on > row.due_on})

    def _cancel_timers(self, session: Session, case: Case, step: StepId) -> None:
        for timer in session.scalars(select(Timer).where(
                Timer.case_id == case.id, Timer.step == step,
                Timer.state == TimerState.SCHEDULED)).all():
            timer.state = TimerState.CANCELLED

    def _close(self, session: Session, case: Case, *, actor: Actor, reason: str) -> None:
        case.status = CaseStatus.CLOSED
        case.closed_at = self.clock.now()
        for row in case.steps:
            if row.state is StepState.OPEN:
                row.state = StepState.CANCELLED
                self._cancel_timers(session, case, row.step)
        self._audit(session, case, actor, "case-closed", {"reason": reason})

    def _add_timer(self, session: Session, case: Case, step: Step, alert: PlannedAlert) -> Timer:
        key = timer_key(case.case_ref, step.step, alert.kind, alert.sequence, step.due_on)
        timer = Timer(case_id=case.id, step=step.step, kind=alert.kind, sequence=alert.sequence,
                      fire_at=alert.fire_at, key=key, state=TimerState.SCHEDULED)
        session.add(timer)
        return timer

    def _alert_email(self, case: Case, step: Step, timer: Timer) -> EmailDraft:
        from sbu.mail import messages

        owner = STEP_RULES[step.step].owner
        common: dict[str, Any] = {"case_ref": case.case_ref, "step": step.step, "due": step.due_on,
                                  "directory": self.directory,
                                  "dashboard_url": self.settings.dashboard_url}
        match timer.kind:
            case TimerKind.REMINDER:
                return messages.reminder_email(owner=owner, **common)
            case TimerKind.OVERDUE:
                return messages.overdue_email(owner=owner, **common)
            case TimerKind.ESCALATION:
                return messages.escalation_email(on=london_date(timer.fire_at), **common)
        raise AssertionError(f"unhandled timer kind {timer.kind}")

    def _queue(self, session: Session, case: Case, draft: EmailDraft) -> None:
        from sbu.mail.outbox import queue_email

        queue_email(session, draft, case_id=case.id, now=self.clock.now(),
                    mail_from_domain=self.settings.mail_from.rpartition("@")[2] or "localhost")

    def _audit(self, session: Session, case: Case | None, actor: Actor, action: str,
               detail: dict[str, Any]) -> None:
        session.add(AuditEvent(case_id=case.id if case else None, at=self.clock.now(),
                               actor=actor.name, via=actor.via, action=action, detail=detail))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
