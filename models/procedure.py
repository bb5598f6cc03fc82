"""The procedure engine: given a case and an event, the effects (docs/architecture.md).

`handle` is a pure function. It checks what every record must satisfy (the case waits for the
step, the date is possible), asks the step's own rule what recording it does, opens the steps the
record opens (`OpenedBy`), then applies the rules that follow from any change: a process whose
start rule now holds is started (and opens its steps that open on start), and the case closes when
its closure rule says so and nothing that keeps it open is open. The store applies the effects in one
transaction (`tasks.service`); nothing here reads the store, the clock or the network.

The rules themselves live with their process in `models.processes`, each with its source named;
the helpers here (`open_item`, `complete_item`) are how a rule says "open this step" or "this step
is done", so every item gets its timers and its emails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from models.alerts import AlertPolicy, collapse_due, planned_alerts, working_days_late
from models.calendar import WorkingDayCalendar, london_date
from models.effects import (
    Acted,
    AlertSent,
    AlertSuperseded,
    AnchorMoved,
    CancelAlerts,
    CancelItem,
    CaseClosedMail,
    CloseCase,
    CompleteItem,
    DropAlert,
    DueTimer,
    Effect,
    EscalationMail,
    Event,
    LateItem,
    MailRequest,
    MoveAnchor,
    OpenItem,
    OverdueMail,
    Recorded,
    Referred,
    ReminderMail,
    Retimed,
    RetimeItem,
    ScheduleAlert,
    SendEmail,
    SetAnchor,
    StartProcess,
    StepOpenedMail,
    StoreRecord,
    TimersDue,
    UpdateItem,
)
from models.enums import Agency, CaseStatus, Category, Role, StepState, TimerKind
from models.errors import Refused
from models.forms import store_only_fields
from models.registry import Act, OpenedBy, Process, Registry, Step
from models.review_policy import ReviewPolicy
from models.state import CaseState, ItemState
from models.timetable import Anchor, Clocks, DateSet, StepRule

# A start rule that keeps starting processes is a bug in the registry, not a case to follow.
_MAX_SETTLING_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules need besides the case: the time, the clocks, the calendar, the alert policy
    and the registry. Built by the caller; nothing here reads the clock."""

    now: datetime
    clocks: Clocks
    calendar: WorkingDayCalendar
    alerts: AlertPolicy
    registry: Registry
    reviews: ReviewPolicy

    @property
    def today(self) -> date:
        return london_date(self.now)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The procedure's answer to one event."""

    effects: tuple[Effect, ...] = ()
    # The record changed nothing: the same answer was already in the store.
    already_recorded: bool = False
    # For a timer: whether its alert goes out, and why (or why not).
    fired: bool = False
    reason: str = ""


# No date a person gives (a due date, a meeting, a planned publication) lies further ahead than
# this: a CSPR delayed by criminal proceedings takes years, never decades, so such a date is a
# mistyped year (2207 for 2027), refused before it sets timers for it.
YEARS_AHEAD = 10


def handle(state: CaseState, event: Event, ctx: Context) -> Outcome:
    """The effects of `event` on the case `state`. Raises `Refused`, with the reason in words and
    nothing to write, when the procedure does not allow it."""
    _refuse_distant_dates(event, ctx)
    match event:
        case Referred():
            return _settled(state, [], ctx)
        case Recorded():
            return record(state, event, ctx)
        case Acted():
            return act(state, event, ctx)
        case TimersDue():
            return fire_due(state, event, ctx)
        case Retimed():
            return _settled(state, retime(state, event, ctx), ctx)
        case AnchorMoved():
            return _settled(state, move_anchor(state, event, ctx), ctx)
    raise AssertionError(f"unhandled event {event!r}")


def _refuse_distant_dates(event: Event, ctx: Context) -> None:
    match event:
        case Recorded() | Acted():
            dates = [(name, value) for name, value in event.form if isinstance(value, date)]
        case Retimed():
            dates = [("due", event.due)]
        case AnchorMoved():
            dates = [(event.anchor.value, event.on)]
        case _:
            return
    limit = _years_after(ctx.today, YEARS_AHEAD)
    for name, value in dates:
        if value > limit:
            raise Refused(f"{name} is more than {YEARS_AHEAD} years ahead")


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# -- recording a step ------------------------------------------------------------------------------

def record(state: CaseState, event: Recorded, ctx: Context) -> Outcome:
    """Check a record against what every record must satisfy, then ask the step's own rule."""
    spec = ctx.registry.item(event.step)
    subject = spec.subject_of(event.form) if spec is not None else ""
    item = state.item(event.step, subject) if spec is not None else None
    if spec is None or item is None or item.state is StepState.CANCELLED:
        raise Refused(f"{state.case_ref} is not waiting for {event.step} "
                      f"(open steps: {_open_labels(state)})")
    on: date = getattr(event.form, spec.date_field)
    if on > ctx.today:
        raise Refused(f"{spec.date_field} is in the future")
    if on < item.anchor_on and not spec.done_before_anchor:
        raise Refused(f"{spec.date_field} is before the step's clock started ({item.anchor_on})")
    if item.state is StepState.DONE:
        if spec.on_repeat is not None:
            spec.on_repeat(state, event.form)
        return Outcome(already_recorded=True)
    if spec.record is not None:
        effects = spec.record(state, event.form, ctx, item)
    else:
        effects = complete_item(item, on, details=structured_details(event.form, spec.date_field))
    if not effects:
        return Outcome(already_recorded=True)
    effects += open_opened_by(state.after(effects), spec.step, ctx)
    return _settled(state, [*effects, _stored(spec.step, item.process, item.subject, event.form)], ctx)


def act(state: CaseState, event: Acted, ctx: Context) -> Outcome:
    """Check an act against what every act must satisfy (the case is open, a date is not in the
    future), then ask the act's own rule."""
    spec: Act | None = ctx.registry.act(event.act)
    if spec is None:
        raise Refused(f"there is no such act: {event.act}")
    if state.status is CaseStatus.CLOSED:
        raise Refused(f"{state.case_ref} is closed")
    if spec.date_field is not None and getattr(event.form, spec.date_field) > ctx.today:
        raise Refused(f"{spec.date_field} is in the future")
    effects = spec.handle(state, event.form, ctx)
    if not effects:
        return Outcome(already_recorded=True)
    effects += open_opened_by(state.after(effects), spec.name, ctx)
    process = ctx.registry.process_of(spec.name)
    assert process is not None
    # The record is filed under the item the act is about (the action it added or noted), if any.
    about = next((e.subject for e in effects if isinstance(e, OpenItem | UpdateItem)), "")
    return _settled(state, [*effects, _stored(spec.name, process.id, about, event.form)], ctx)


def _stored(kind: str, process: str, subject: str, form: BaseModel) -> StoreRecord:
    return StoreRecord(kind=kind, process=process, subject=subject, values=form.model_dump(mode="json"))


def structured_details(form: BaseModel, date_field: str | None = None) -> dict[str, Any]:
    """What an item keeps of its form: every field but the date and those that stay in the
    store's records only (free text, names), as JSON."""
    hidden = store_only_fields(type(form)) | {date_field}
    return {name: value for name, value in form.model_dump(mode="json").items() if name not in hidden}


def _open_labels(state: CaseState) -> str:
    return ", ".join(item.label for item in state.open_steps()) or "none"


# -- the helpers rules use ---------------------------------------------------------------------------

def open_item(state: CaseState, spec: Step, process: Process, ctx: Context, *,
              subject: str = "", anchor_on: date | None = None, agency: Agency | None = None,
              due: date | None = None, words: str | None = None) -> list[Effect]:
    """Open an item of `spec`'s kind, due by its clock from its anchor (or on `due`, a date a
    person set, described by `words`), with its timers and (if the spec says so) an email to its
    owner: its role, or `agency` for an item an agency owes. Nothing if the case already has it."""
    if state.item(spec.step, subject) is not None:
        return []
    rule = spec.rule
    start = anchor_on if anchor_on is not None else state.anchors.get(rule.anchor)
    if start is None:
        raise AssertionError(f"{spec.step} opened before its anchor {rule.anchor.value} is known")
    set_by_person = due is not None
    if due is None:
        due, counted = rule.due(start, clocks=ctx.clocks, calendar=ctx.calendar,
                                near_miss=state.category is Category.NEAR_MISS)
        words = words or counted
    elif not words:
        raise AssertionError("a due date a person set is described by who set it ('set by ...')")
    effects: list[Effect] = [OpenItem(step=spec.step, subject=subject, process=process.id,
                                      title=rule.title, anchor=rule.anchor, anchor_on=start, due=due,
                                      rule=words or "set when it opened", agency=agency,
                                      due_set_by_person=set_by_person)]
    if spec.alerts:
        effects += alerts_for(spec.step, subject, due, ctx)
    if spec.notify_owner:
        effects.append(SendEmail(StepOpenedMail(rule=rule, due=due, owner=owner_of(rule, agency),
                                                subject=subject)))
    return effects


def owner_of(rule: StepRule, agency: Agency | None) -> Role | Agency:
    """Who an item's emails go to: its rule's role, or, for an item an agency owes, that agency."""
    if rule.owner is Role.AGENCY:
        if agency is None:
            raise AssertionError(f"{rule.step} is owed by an agency, and none was named")
        return agency
    return rule.owner


def alerts_for(step: str, subject: str, due: date, ctx: Context) -> list[Effect]:
    return [ScheduleAlert(step=step, subject=subject, due=due, kind=alert.kind,
                          sequence=alert.sequence, fire_at=alert.fire_at)
            for alert in planned_alerts(due=due, now=ctx.now, calendar=ctx.calendar, policy=ctx.alerts)]


def complete_item(item: ItemState, on: date, *, details: dict[str, Any] | None = None) -> list[Effect]:
    """The item is done on `on`: its timers stop."""
    return [CompleteItem(step=item.step, subject=item.subject, completed_on=on, late=on > item.due,
                         details=details or {}),
            CancelAlerts(step=item.step, subject=item.subject)]


def cancel_item(item: ItemState) -> list[Effect]:
    return [CancelItem(step=item.step, subject=item.subject),
            CancelAlerts(step=item.step, subject=item.subject)]


def _open_each(state: CaseState, specs: list[tuple[Step, Process]], ctx: Context) -> list[Effect]:
    """Each of `specs` without a subject, opened if its anchor date is known and the case has it
    not already; those with one item per subject are their opener's to open."""
    effects: list[Effect] = []
    for spec, process in specs:
        if spec.subject_field is None and state.anchors.get(spec.anchor) is not None:
            opened = open_item(state, spec, process, ctx)
            state = state.after(opened)
            effects += opened
    return effects


def open_on_start(state: CaseState, process: Process, ctx: Context) -> list[Effect]:
    """A process's steps that open on start (`ON_START`) and have no subject, each once its anchor
    date is known: what starting a process opens besides its `on_start`."""
    return _open_each(state, [(spec, process) for spec in process.opened_on_start], ctx)


def open_opened_by(state: CaseState, name: str, ctx: Context) -> list[Effect]:
    """The steps the record of step or act `name` opens (`OpenedBy`) and that have no subject,
    each once its anchor date is known and its condition holds of the case."""
    opened: list[tuple[Step, Process]] = []
    for spec in ctx.registry.opened_by(name):
        process = ctx.registry.process_of(spec.step)
        assert process is not None
        assert isinstance(spec.opens, OpenedBy)
        if spec.opens.when is None or spec.opens.when(state):
            opened.append((spec, process))
    return _open_each(state, opened, ctx)


# -- what follows from any change -------------------------------------------------------------------

def _settled(state: CaseState, effects: list[Effect], ctx: Context) -> Outcome:
    """`effects`, plus what follows from them: processes whose start rule now holds, then the
    case's closure."""
    effects = list(effects)
    after = state.after(effects)
    for _round in range(_MAX_SETTLING_ROUNDS):
        starting = [p for p in ctx.registry.processes if not after.started(p.id) and p.starts(after)]
        if not starting:
            break
        for process in starting:
            opened: list[Effect] = [StartProcess(process.id)]
            after = after.after(opened)
            if process.on_start is not None:
                own = process.on_start(after, ctx)
                after = after.after(own)
                opened += own
            more = open_on_start(after, process, ctx)
            after = after.after(more)
            effects += [*opened, *more]
    else:
        raise AssertionError("the processes' start rules do not settle")
    _check_anchors_set(effects, ctx)
    reason = _closes(after, ctx)
    if reason is not None:
        for item in after.open_steps():
            effects += cancel_item(item)
        effects += [CloseCase(reason), SendEmail(CaseClosedMail(ctx.today))]
    return Outcome(effects=tuple(effects))


def _closes(state: CaseState, ctx: Context) -> str | None:
    """Why the case closes now, or None: its root process's rule gives a reason and no open item
    keeps the case open (`Step.keeps_case_open`; an item the registry no longer knows does)."""
    closes = ctx.registry.root.closes
    if closes is None or state.status is CaseStatus.CLOSED:
        return None
    for item in state.open_steps():
        spec = ctx.registry.item(item.step)
        if spec is None or spec.keeps_case_open:
            return None
    return closes(state)


def _check_anchors_set(effects: list[Effect], ctx: Context) -> None:
    # A rule may set only a date of the case that a process declares: any other would be stored
    # where nothing counts from it, or shadow an item's own date.
    for effect in effects:
        if isinstance(effect, SetAnchor):
            declared = ctx.registry.anchor(effect.anchor)
            if declared is None or not declared.of_case:
                raise AssertionError(f"a rule set {effect.anchor}, which is not a declared date of the case")


# -- timers ------------------------------------------------------------------------------------------

def fire_due(state: CaseState, event: TimersDue, ctx: Context) -> Outcome:
    """The case's alerts due at `ctx.now`, as one timer pass finds them. For each item still open,
    only its latest alert due goes out (`models.alerts.collapse_due`) and the others are recorded
    as superseded; a timer of an item no longer open is dropped. The reminders and overdue alerts
    go to each item's owner; the escalations go to the DSPs in one email listing every item
    escalated. The emails are queued in the order their alerts came due, so the SBU (copied on the
    overdue alerts and the escalations) reads them in order."""
    items: dict[tuple[str, str], list[DueTimer]] = {}
    for timer in event.timers:
        items.setdefault((timer.step, timer.subject), []).append(timer)
    effects: list[Effect] = []
    mails: list[tuple[datetime, MailRequest]] = []
    escalated: list[tuple[datetime, LateItem]] = []
    sent = superseded = dropped = 0
    for (step, subject), timers in items.items():
        item = state.item(step, subject)
        spec = ctx.registry.item(step)
        if item is None or not item.is_open or spec is None:
            effects += [DropAlert(timer.id) for timer in timers]
            dropped += len(timers)
            continue
        collapsed = collapse_due(timers, today=ctx.today, calendar=ctx.calendar, policy=ctx.alerts)
        fires = collapsed.fires
        rule = spec.rule
        late = working_days_late(due=item.due, today=ctx.today, calendar=ctx.calendar)
        owner = owner_of(rule, item.agency)
        match fires.kind:
            case TimerKind.REMINDER:
                mails.append((fires.fire_at, ReminderMail(rule=rule, due=item.due, owner=owner,
                                                          subject=subject)))
            case TimerKind.OVERDUE:
                mails.append((fires.fire_at, OverdueMail(rule=rule, due=item.due, owner=owner, on=ctx.today,
                                                         working_days_late=late, subject=subject)))
            case TimerKind.ESCALATION:
                escalated.append((fires.fire_at, LateItem(rule=rule, due=item.due, working_days_late=late,
                                                          subject=subject)))
            case _:
                raise AssertionError(f"unhandled timer kind {fires.kind}")
        effects += [AlertSuperseded(timer=timer.id, step=step, subject=subject, kind=timer.kind, due=item.due,
                                    sequence=timer.sequence, by=fires.kind) for timer in collapsed.superseded]
        effects.append(AlertSent(timer=fires.id, step=step, subject=subject, kind=fires.kind, due=item.due,
                                 sequence=fires.sequence))
        superseded += len(collapsed.superseded)
        sent += 1
        if (nxt := collapsed.next_escalation) is not None:
            effects.append(ScheduleAlert(step=step, subject=subject, due=item.due, kind=nxt.kind,
                                         sequence=nxt.sequence, fire_at=nxt.fire_at))
    if escalated:
        escalated.sort(key=lambda pair: pair[0])
        listed = tuple(late for _, late in escalated)
        mails.append((escalated[0][0], EscalationMail(on=ctx.today, items=listed)))
    mails.sort(key=lambda pair: pair[0])
    effects += [SendEmail(mail) for _, mail in mails]
    return Outcome(effects=tuple(effects), fired=sent > 0,
                   reason=f"{sent} sent, {superseded} superseded, {dropped} dropped")


# -- moving dates ------------------------------------------------------------------------------------

def retime(state: CaseState, event: Retimed, ctx: Context) -> list[Effect]:
    """An open item given a new due date, with the reason: its timers are replaced by timers for
    the new date."""
    item = state.item(event.step, event.subject)
    if item is None or not item.is_open:
        label = f"{event.step}:{event.subject}" if event.subject else event.step
        raise Refused(f"{state.case_ref} has no open {label} to re-time "
                      f"(open steps: {_open_labels(state)})")
    if event.due < ctx.today:
        raise Refused("the new due date is in the past")
    if event.due == item.due:
        return []
    return retimed(state, item, event.due, f"re-timed on {ctx.today.isoformat()} "
                   f"(was due {item.due.isoformat()})", event.reason, ctx)


def move_anchor(state: CaseState, event: AnchorMoved, ctx: Context) -> list[Effect]:
    """An anchor date moved, with the reason: every open item counted from it follows, each by its
    own clock (an item whose due date a person set keeps it)."""
    was = state.anchors.get(event.anchor)
    if was == event.on:
        return []
    declared = ctx.registry.anchor(event.anchor)
    if declared is None:
        raise Refused(f"there is no anchor date {event.anchor} (the anchors: "
                      f"{', '.join(spec.anchor for spec in ctx.registry.anchors)})")
    if not declared.movable:
        raise Refused("the referral's date is fixed; refer again if it was wrong"
                      if event.anchor is Anchor.REFERRAL_RECEIVED else f"{event.anchor} is fixed")
    if not declared.of_case:
        raise Refused(f"{event.anchor.value} is each item's own date, not the case's; re-time the item")
    effects: list[Effect] = [MoveAnchor(anchor=event.anchor, on=event.on, was=was, reason=event.reason)]
    for spec in ctx.registry.anchored_on(event.anchor):
        if isinstance(spec.rule.clock, DateSet):
            continue
        for item in state.items_of(spec.step):
            # An item opened on a date a person set (an IMR on the panel's date) keeps it.
            if not item.is_open or item.due_set_by_person:
                continue
            due, words = spec.rule.due(event.on, clocks=ctx.clocks, calendar=ctx.calendar,
                                       near_miss=state.category is Category.NEAR_MISS)
            if due != item.due:
                effects += retimed(state, item, due, words, event.reason, ctx, anchor_on=event.on)
    return effects


def retimed(state: CaseState, item: ItemState, due: date, rule: str, reason: str, ctx: Context, *,
            anchor_on: date | None = None) -> list[Effect]:
    """`item` due on `due` from now on: its timers replaced, and whatever its step's rule says
    follows from the move (the meeting's invitation updated)."""
    effects = retime_item(item, due, rule, reason, ctx, anchor_on=anchor_on)
    spec = ctx.registry.item(item.step)
    if spec is not None and spec.on_retime is not None:
        effects += spec.on_retime(state, item, due, reason, ctx)
    return effects


def retime_item(item: ItemState, due: date, rule: str, reason: str, ctx: Context, *,
                anchor_on: date | None = None) -> list[Effect]:
    """`item` due on `due`, its timers replaced; nothing else follows (see `retimed`)."""
    return [RetimeItem(step=item.step, subject=item.subject, due=due, was=item.due, rule=rule,
                       reason=reason, anchor_on=anchor_on),
            CancelAlerts(step=item.step, subject=item.subject),
            *alerts_for(item.step, item.subject, due, ctx)]
