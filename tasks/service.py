"""The case service: every change to a case, each in one transaction.

A change loads the case, asks the procedure (`models.procedure.handle`) what the event means, and
applies the effects it answers with in one unit of work: the state changes, an audit event for each,
the emails they cause (outbox rows) and the deadline timers they need. Only after the commit is
Prefect told (`tasks.prefect`); if that fails, the reconciliation sweep repairs it. Both the
CLI and the flows call these methods, so a rule is enforced the same way from either side; no rule
lives here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.access import People, check_change, check_referral
from models.alerts import run_repair, timer_key
from models.calendar import london_date
from models.clock import Clock
from models.effects import (
    Acted,
    AlertSent,
    AnchorMoved,
    ArrangeMeeting,
    CancelAlerts,
    CancelItem,
    CloseCase,
    CompleteItem,
    Effect,
    Event,
    MoveAnchor,
    OpenItem,
    Recorded,
    Referred,
    RepairRun,
    Retimed,
    RetimeItem,
    ScheduleAlert,
    SendEmail,
    SetAnchor,
    SetPath,
    SetReview,
    SetStatus,
    StartProcess,
    StoreDecision,
    StoreRecord,
    TimerFired,
    UpdateItem,
    audit_of,
)
from models.enums import Anchor, CaseStatus, Interface, RunLoss, StepState, TimerState
from models.errors import Refused, SbuError
from models.forms import DspDecisionForm, Referral, RetimeForm
from models.importing import HistoryEntry, HistoryRefused, catch_up_alerts, historical, moment_of
from models.procedure import Context, Outcome, handle
from models.processes import build_registry
from models.processes.case import DSP_DECISION, referral_anchors
from models.registry import Registry
from models.settings import Settings
from models.state import CaseState
from models.tables import (
    Case,
    CaseAgency,
    CaseAnchor,
    CaseChild,
    CaseRun,
    Decision,
    Item,
    Meeting,
    Record,
    Timer,
)
from tasks.holiday_cache import calendar_for
from tasks.store import repositories as repo
from tasks.store.db import Store
from tasks.store.queries import case_state, case_view, case_views, no_such_case
from tasks.store.repositories import TimerView

if TYPE_CHECKING:
    from tasks.mail.directory import Directory

__all__ = ["SYSTEM", "Actor", "CaseService", "ChangeOutcome", "ReferOutcome", "TimerOutcome", "TimerView"]


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
    """What a change did: the items it opened, completed and re-timed, the processes it started,
    and whether the case closed."""

    case_ref: str
    already_recorded: bool = False
    opened: tuple[str, ...] = ()
    completed: tuple[str, ...] = ()
    retimed: tuple[str, ...] = ()
    started: tuple[str, ...] = ()
    closed: bool = False

    @classmethod
    def of(cls, case_ref: str, outcome: Outcome) -> ChangeOutcome:
        effects = outcome.effects

        def labels(kind: type[Any]) -> tuple[str, ...]:
            return tuple(f"{e.step}:{e.subject}" if e.subject else e.step
                         for e in effects if isinstance(e, kind))

        return cls(case_ref=case_ref, already_recorded=outcome.already_recorded, opened=labels(OpenItem),
                   completed=labels(CompleteItem), retimed=labels(RetimeItem),
                   started=tuple(e.process for e in effects if isinstance(e, StartProcess)),
                   closed=any(isinstance(e, CloseCase) for e in effects))

    def as_json(self) -> dict[str, Any]:
        return {"case_ref": self.case_ref, "already_recorded": self.already_recorded,
                "opened": list(self.opened), "completed": list(self.completed),
                "retimed": list(self.retimed), "started": list(self.started), "closed": self.closed}


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    fired: bool
    reason: str
    case_ref: str | None = None
    next_timer_key: str | None = None


def fingerprint(referral: Referral) -> str:
    return hashlib.sha256(referral.model_dump_json().encode()).hexdigest()


def _point_run(session: Session, case: Case, process: str, flow_run_id: str, *, now: datetime) -> None:
    """Point the case's `process` at the flow run `flow_run_id`, its first or a replacement."""
    run = repo.find_run(session=session, case_id=case.id, process=process)
    if run is None:
        session.add(CaseRun(case_id=case.id, process=process, flow_run_id=flow_run_id, started_at=now))
    else:
        run.flow_run_id = flow_run_id

def _set_anchor(session: Session, case: Case, anchor: Anchor, on: date) -> None:
    """The case's `anchor` is `on` from now on: its row written, or changed."""
    row = session.get(CaseAnchor, (case.id, anchor))
    if row is None:
        session.add(CaseAnchor(case_id=case.id, anchor=anchor, anchor_on=on))
    else:
        row.anchor_on = on


class CaseService:
    def __init__(self, *, store: Store, settings: Settings, clock: Clock,
                 registry: Registry | None = None, directory: Directory | None = None,
                 people: People | None = None) -> None:
        self.store = store
        self._people = people
        self.settings = settings
        self.clock = clock
        self.registry = registry if registry is not None else build_registry(settings.process_modules)
        try:
            self.clocks = self.registry.check_clocks(settings.clocks)
        except ValueError as error:
            raise SbuError(f"settings: {error}") from None
        self._directory = directory
        self.calendar = calendar_for(settings)

    @cached_property
    def directory(self) -> Directory:
        if self._directory is not None:
            return self._directory
        from tasks.mail.directory import load_directory

        return load_directory(self.settings.directory_file)

    @cached_property
    def people(self) -> People | None:
        """The partnership's directory of people, or None when none is configured: then anyone
        may record anything, as in the demo and the embedded defaults (production requires one)."""
        if self._people is not None:
            return self._people
        if self.settings.people_file is None:
            return None
        from tasks.people import load_people

        return load_people(self.settings.people_file, roles=self.registry.roles)

    def _check(self, actor: Actor, event: Event | None) -> None:
        """Refuse, before anything is read or written, a change `actor` may not make
        (`models.access`). The system's own changes (a timer firing) are its rules, not a person's."""
        people = self.people
        if people is None or actor.via is Interface.SYSTEM:
            return
        if event is None:
            check_referral(people, actor=actor.name)
        else:
            check_change(people, actor=actor.name, event=event, registry=self.registry)

    def context(self) -> Context:
        return Context(now=self.clock.now(), clocks=self.clocks, calendar=self.calendar,
                       alerts=self.settings.alerts, registry=self.registry, reviews=self.settings.reviews)

    # -- commands --------------------------------------------------------------------------------

    def refer(self, referral: Referral, *, actor: Actor) -> ReferOutcome:
        """Store a referral as a case and start its processes. The same referring agency and
        external reference give the same case; with different details they are refused."""
        self._check(actor, None)
        for _attempt in range(3):
            try:
                with self.store.transaction() as session:
                    return self._refer(session, referral, actor=actor)
            except IntegrityError:
                # Two submissions raced on the referral key or the case sequence: look again.
                continue
        raise Refused("the referral could not be stored after three attempts; try again")

    def _refer(self, session: Session, referral: Referral, *, actor: Actor) -> ReferOutcome:
        partnership = self.settings.partnership
        digest = fingerprint(referral)
        existing = repo.find_referral(session=session, partnership=partnership,
                                      agency=referral.referring_agency, external_ref=referral.external_ref)
        if existing is not None:
            if existing.fingerprint != digest:
                raise Refused(f"{referral.referring_agency.value} has already referred this "
                              f"external reference as {existing.case_ref}, with different details; "
                              "nothing was written")
            return ReferOutcome(existing.case_ref, created=False)

        ctx = self.context()
        case = self._new_case(session, referral, ctx)
        self._apply(session, case, handle(self._state(session, case, ctx), Referred(), ctx).effects,
                    actor=actor, ctx=ctx,
                    audits=[("case-referred", {"category": case.category.value,
                                               "children": len(case.children)})])
        return ReferOutcome(case.case_ref, created=True)

    def _new_case(self, session: Session, referral: Referral, ctx: Context) -> Case:
        """The case row of `referral`, with its children, agencies and the anchors it brings."""
        partnership = self.settings.partnership
        case = Case(
            case_ref=repo.next_case_ref(session=session, partnership=partnership,
                                        prefix=self.settings.case_ref_prefix, year=referral.referred_on.year),
            partnership=partnership, referring_agency=referral.referring_agency,
            external_ref=referral.external_ref, fingerprint=fingerprint(referral), category=referral.category,
            abuse_or_neglect=referral.abuse_or_neglect, status=CaseStatus.AWAITING_DECISION, path=None,
            incident_on=referral.incident_date, la_aware_on=referral.la_aware_date,
            referred_at=referral.referred_at, referred_on=referral.referred_on, created_at=ctx.now,
        )
        case.children = [
            CaseChild(position=index, la_record_id=child.la_record_id, age_years=child.age_years,
                      looked_after=child.looked_after, care_leaver=child.care_leaver)
            for index, child in enumerate(referral.children)
        ]
        case.agencies = [CaseAgency(agency=agency) for agency in referral.agencies_involved]
        session.add(case)
        session.flush()
        for anchor, on in referral_anchors(referred_on=referral.referred_on,
                                           la_aware_on=referral.la_aware_date).items():
            _set_anchor(session, case, anchor, on)
        return case

    def replay(self, session: Session, referral: Referral, history: Sequence[HistoryEntry], *,
               importer: Actor, imported: Mapping[str, Any]) -> CaseState:
        """Store a case that began before the system did, with its history, in the caller's
        transaction (`tasks.importing` owns it): the referral, then each entry in order, each
        handled by the procedure exactly as if recorded on its own date (the case clock set to
        it), and written without the emails and timers of the past (`models.importing.historical`).
        Last, the timers of what is still open, from now on only. Each audit event says it was
        imported (`imported`: who ran the import, from which file) and the date it records; it is
        stamped with the moment it was written. Raises `HistoryRefused` naming the entry the
        procedure refused; the caller rolls back."""
        self._check(importer, None)
        ctx = self.context()
        now = ctx.now

        def at(moment: datetime) -> Context:
            return replace(ctx, now=moment)

        def mark(on: date) -> dict[str, Any]:
            return {"imported": {**imported, "on": on.isoformat()}}

        moment = min(now, referral.referred_at)
        case = self._new_case(session, referral, at(moment))
        referred = handle(self._state(session, case, at(moment)), Referred(), at(moment))
        self._apply(session, case, historical(referred.effects), actor=importer, ctx=at(moment),
                    audits=[("case-referred", {"category": case.category.value,
                                               "children": len(case.children)})],
                    mark=mark(referral.referred_on), audit_at=now)
        for index, entry in enumerate(history):
            moment = moment_of(entry.on, after=moment, now=now)
            step_ctx = at(moment)
            try:
                outcome = handle(self._state(session, case, step_ctx), entry.event, step_ctx)
            except Refused as error:
                # The case reference is this transaction's, rolled back with the refusal.
                raise HistoryRefused(index, str(error).replace(case.case_ref, "the case")) from None
            who = Actor(entry.by, Interface.IMPORT) if entry.by else importer
            self._apply(session, case, historical(outcome.effects), actor=who, ctx=step_ctx,
                        mark=mark(entry.on), audit_at=now)
        state = self._state(session, case, ctx)
        self._apply(session, case, catch_up_alerts(state, ctx), actor=SYSTEM, ctx=ctx,
                    mark=mark(ctx.today), audit_at=now)
        return state  # timers change nothing the case's state shows

    def record(self, case_ref: str, step: str, form: BaseModel, *, actor: Actor) -> ChangeOutcome:
        """Record a step (or, for a step with several parts, one part of it) with its form."""
        return self._change(case_ref, Recorded(step=step, form=form), actor=actor)

    def act(self, case_ref: str, act: str, form: BaseModel, *, actor: Actor) -> ChangeOutcome:
        """Do one of the registry's acts (add an action, note progress, move the meeting or the
        planned publication date) with its form."""
        return self._change(case_ref, Acted(act=act, form=form), actor=actor)

    def decide(self, case_ref: str, form: DspDecisionForm, *, actor: Actor) -> ChangeOutcome:
        """Record the DSPs' decision and set the case on its path. The same decision again is
        accepted as already recorded; a different one is refused."""
        return self.record(case_ref, DSP_DECISION.step, form, actor=actor)

    def retime(self, case_ref: str, step: str, form: RetimeForm, *, subject: str = "",
               actor: Actor) -> ChangeOutcome:
        """Give an open item a new due date, with the reason; its timers move with it."""
        return self._change(case_ref, Retimed(step=step, subject=subject, due=form.due, reason=form.reason),
                            actor=actor)

    def move_anchor(self, case_ref: str, anchor: Anchor, form: RetimeForm, *, actor: Actor) -> ChangeOutcome:
        """Move an anchor date, with the reason; every open item counted from it follows."""
        return self._change(case_ref, AnchorMoved(anchor=anchor, on=form.due, reason=form.reason),
                            actor=actor)

    def _change(self, case_ref: str, event: Event, *, actor: Actor) -> ChangeOutcome:
        self._check(actor, event)
        with self.store.transaction() as session:
            case = self._case(session, case_ref, for_update=True)
            ctx = self.context()
            outcome = handle(self._state(session, case, ctx), event, ctx)
            self._apply(session, case, outcome.effects, actor=actor, ctx=ctx)
            return ChangeOutcome.of(case_ref, outcome)

    def fire_timer(self, key: str) -> TimerOutcome:
        """A deadline-check run has come due: send its alert if its item is still open, and
        schedule the next escalation. Quiet (and harmless) if the item is done or the timer ran."""
        with self.store.transaction() as session:
            found = repo.find_timer(session=session, key=key)
            if found is None:
                return TimerOutcome(False, "unknown timer")
            # The case row first, then the timer's: the order every change takes them in (it locks
            # its case, then cancels or adds its timers). Taken the other way round, a timer firing
            # while its step was recorded deadlocked on PostgreSQL, and one of the two failed.
            case = repo.lock_case(session=session, case_id=found.case_id)
            timer = repo.find_timer(session=session, key=key, for_update=True)
            assert timer is not None  # timers are never deleted
            session.refresh(timer)  # as it stands now we hold the case, not as first read
            if timer.state is not TimerState.SCHEDULED:
                return TimerOutcome(False, f"timer already {timer.state.value}")
            ctx = self.context()
            # The item's earlier timers already due go first, in order: after an outage their
            # runs all start at once, and the SBU must not read an escalation before the overdue
            # alert it follows. Their own runs then find them fired and stay quiet.
            earlier = sorted((t for t in repo.scheduled_timers_of(session=session, item_id=timer.item_id)
                              if (t.fire_at, t.id) < (timer.fire_at, timer.id) and t.fire_at <= ctx.now),
                             key=lambda t: (t.fire_at, t.id))
            fired, added = False, list[Timer]()
            for each in [*earlier, timer]:
                outcome, new_timers = self._fire(session, case, each, ctx)
                fired, added = fired or outcome.fired, added + new_timers
            return TimerOutcome(fired, outcome.reason, case_ref=case.case_ref,
                                next_timer_key=added[0].key if added else None)

    def _fire(self, session: Session, case: Case, timer: Timer, ctx: Context) -> tuple[Outcome, list[Timer]]:
        event = TimerFired(step=timer.item.step, subject=timer.item.subject, kind=timer.kind,
                           sequence=timer.sequence, fire_at=timer.fire_at)
        outcome = handle(self._state(session, case, ctx), event, ctx)
        timer.fired_at = ctx.now
        timer.state = TimerState.FIRED if outcome.fired else TimerState.CANCELLED
        return outcome, self._apply(session, case, outcome.effects, actor=SYSTEM, ctx=ctx)

    def mark_timer_scheduled(self, key: str, flow_run_id: str) -> None:
        with self.store.transaction() as session:
            timer = repo.find_timer(session=session, key=key)
            assert timer is not None
            timer.flow_run_id = flow_run_id

    def forget_timer_run(self, key: str) -> None:
        with self.store.transaction() as session:
            timer = repo.find_timer(session=session, key=key)
            assert timer is not None
            timer.flow_run_id = None

    def replace_run(self, case_ref: str, process: str, flow_run_id: str, *, loss: RunLoss,
                    replaced: str) -> None:
        """Point the case's `process` at `flow_run_id`, the run that replaced `replaced`, which
        Prefect had lost; in the same transaction, the audit event and the SBU's alert email
        (`models.alerts.run_repair`)."""
        with self.store.transaction() as session:
            case = self._case(session, case_ref, for_update=True)
            self._apply(session, case, run_repair(process=process, loss=loss, replaced=replaced,
                                                  replacement=flow_run_id),
                        actor=SYSTEM, ctx=self.context())

    def set_run(self, case_ref: str, process: str, flow_run_id: str) -> None:
        """Remember the flow run Prefect has for one of the case's processes."""
        with self.store.transaction() as session:
            _point_run(session, self._case(session, case_ref), process, flow_run_id, now=self.clock.now())

    # -- queries ---------------------------------------------------------------------------------

    def case_view(self, case_ref: str) -> CaseState:
        return case_view(self.store.engine, partnership=self.settings.partnership, case_ref=case_ref,
                         today=london_date(self.clock.now()))

    def list_cases(self) -> list[CaseState]:
        return case_views(self.store.engine, partnership=self.settings.partnership,
                          today=london_date(self.clock.now()))

    def timers(self, *, case_ref: str | None = None,
               states: Iterable[TimerState] = (TimerState.SCHEDULED,)) -> list[TimerView]:
        with self.store.reading() as session:
            return repo.timers(session=session, partnership=self.settings.partnership,
                               case_ref=case_ref, states=states)

    def untold_timers(self) -> bool:
        with self.store.reading() as session:
            return repo.untold_timers(session=session, partnership=self.settings.partnership)

    def cases_with_untold_runs(self) -> list[str]:
        with self.store.reading() as session:
            return repo.cases_with_untold_runs(session=session, partnership=self.settings.partnership)

    def expected_runs(self) -> list[tuple[str, CaseStatus, str, str | None]]:
        """Every case's runs as the store has them: (case, its status, process, flow run id)."""
        with self.store.reading() as session:
            return repo.expected_runs(session=session, partnership=self.settings.partnership)

    def timer_runs_to_cancel(self, *, case_ref: str | None = None) -> list[TimerView]:
        """Cancelled timers whose deadline-check run may still be waiting in Prefect."""
        return [t for t in self.timers(case_ref=case_ref, states=(TimerState.CANCELLED,))
                if t.flow_run_id is not None]

    # -- applying the procedure's answer ------------------------------------------------------------

    def _case(self, session: Session, case_ref: str, *, for_update: bool = False) -> Case:
        case = repo.find_case(session=session, partnership=self.settings.partnership, case_ref=case_ref,
                              for_update=for_update)
        if case is None:
            raise no_such_case(case_ref, self.settings.partnership)
        return case

    def _state(self, session: Session, case: Case, ctx: Context) -> CaseState:
        # Read with Core on this transaction's own connection, so the procedure sees exactly what
        # this transaction sees (the ORM's pending changes are flushed first).
        session.flush()
        return case_state(session.connection(), partnership=case.partnership, case_ref=case.case_ref,
                          today=ctx.today)

    def _apply(self, session: Session, case: Case, effects: Sequence[Effect], *, actor: Actor,
               ctx: Context, audits: Sequence[tuple[str, dict[str, Any]]] = (),
               mark: Mapping[str, Any] | None = None, audit_at: datetime | None = None) -> list[Timer]:
        """Write `effects`, each with its audit event, after `audits` already due. Returns the
        timers added. `mark` is added to every audit event's detail, and `audit_at` (default: the
        context's now) stamps them: an imported history is written now, about its own dates."""
        added: list[Timer] = []
        pending = list(audits)
        for effect in effects:
            match effect:
                case OpenItem():
                    session.add(Item(case_id=case.id, process=effect.process, step=effect.step,
                                     subject=effect.subject, title=effect.title, state=StepState.OPEN,
                                     anchor=effect.anchor, anchor_on=effect.anchor_on, due_on=effect.due,
                                     rule=effect.rule[:120], due_set_by_person=effect.due_set_by_person,
                                     opened_at=ctx.now, agency=effect.agency))
                    session.flush()
                case CompleteItem():
                    item = self._item(session, case, effect.step, effect.subject)
                    item.state = StepState.DONE
                    item.completed_on = effect.completed_on
                    item.completed_at = ctx.now
                    item.completed_by = actor.name
                    item.completed_via = actor.via
                    item.details = dict(effect.details)
                case UpdateItem():
                    self._item(session, case, effect.step, effect.subject).details = dict(effect.details)
                case CancelItem():
                    self._item(session, case, effect.step, effect.subject).state = StepState.CANCELLED
                case RetimeItem():
                    item = self._item(session, case, effect.step, effect.subject)
                    item.due_on = effect.due
                    item.rule = effect.rule[:120]
                    if effect.anchor_on is not None:
                        item.anchor_on = effect.anchor_on
                case ScheduleAlert():
                    item = self._item(session, case, effect.step, effect.subject)
                    timer = Timer(case_id=case.id, item_id=item.id, kind=effect.kind,
                                  sequence=effect.sequence, fire_at=effect.fire_at,
                                  state=TimerState.SCHEDULED,
                                  key=timer_key(case_ref=case.case_ref, step=effect.step,
                                                subject=effect.subject, kind=effect.kind,
                                                sequence=effect.sequence, due=effect.due))
                    session.add(timer)
                    added.append(timer)
                case CancelAlerts():
                    item = self._item(session, case, effect.step, effect.subject)
                    for scheduled in repo.scheduled_timers_of(session=session, item_id=item.id):
                        scheduled.state = TimerState.CANCELLED
                case SetAnchor() | MoveAnchor():
                    _set_anchor(session, case, effect.anchor, effect.on)
                case SetPath():
                    case.path = effect.path
                case SetStatus():
                    case.status = effect.status
                case StoreDecision():
                    session.add(Decision(
                        case_id=case.id, sin=effect.sin, rapid_review=effect.rapid_review,
                        path=effect.path, rationale=effect.rationale,
                        sign_off={"sign_off": [{"role": role.value, "name": name, "deputy": deputy}
                                               for role, name, deputy in effect.sign_off]},
                        decided_on=effect.decided_on,
                        recorded_at=ctx.now, recorded_by=actor.name, recorded_via=actor.via))
                case StoreRecord():
                    session.add(Record(case_id=case.id, kind=effect.kind, process=effect.process,
                                       subject=effect.subject, form_values=dict(effect.values),
                                       recorded_at=ctx.now, recorded_by=actor.name, recorded_via=actor.via))
                case ArrangeMeeting():
                    meeting = session.get(Meeting, case.id) or Meeting(case_id=case.id)
                    meeting.starts_at, meeting.minutes, meeting.place = (effect.starts_at, effect.minutes,
                                                                         effect.place)
                    meeting.sequence, meeting.arranged_at = effect.sequence, ctx.now
                    session.add(meeting)
                case SetReview():
                    case.review = effect.route
                case RepairRun():
                    _point_run(session, case, effect.process, effect.replacement, now=ctx.now)
                case StartProcess():
                    if repo.find_run(session=session, case_id=case.id, process=effect.process) is None:
                        session.add(CaseRun(case_id=case.id, process=effect.process, flow_run_id=None,
                                            started_at=ctx.now))
                case CloseCase():
                    case.status = CaseStatus.CLOSED
                    case.closed_at = ctx.now
                case SendEmail():
                    self._queue(session, case, effect, ctx)
                case AlertSent():
                    pass  # its audit event is the record
                case _:
                    raise AssertionError(f"unhandled effect {effect!r}")
            audit = audit_of(effect)
            if audit is not None:
                pending.append(audit)
        # The audit events go last, in order and together: writing them locks the audit chain's
        # head until the commit, and the change itself (its emails rendered, its rows written)
        # need not hold it.
        session.flush()
        if mark:
            pending = [(action, {**detail, **mark}) for action, detail in pending]
        repo.add_audit_events(session=session, case_id=case.id, at=audit_at or ctx.now, actor=actor.name,
                              via=actor.via, events=pending)
        return added

    def _item(self, session: Session, case: Case, step: str, subject: str) -> Item:
        return repo.get_item(session=session, case_id=case.id, step=step, subject=subject)

    def _queue(self, session: Session, case: Case, effect: SendEmail, ctx: Context) -> None:
        from tasks.mail.drafts import draft_for
        from tasks.mail.outbox import mail_domain, queue_email

        draft = draft_for(effect.mail, case_ref=case.case_ref, directory=self.directory,
                          dashboard_url=self.settings.dashboard_url, now=ctx.now)
        queue_email(session, draft, case_id=case.id, now=ctx.now,
                    mail_from_domain=mail_domain(self.settings.mail_from))
