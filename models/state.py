"""A case as the procedure sees it: its facts, anchor dates, dated items and processes.

The store reads it (`tasks.store.queries`), `sbu status` and the dashboard show it, and the
procedure (`models.procedure`) is handed it with every event and answers with effects;
`after` is how the procedure sees a case once its own effects are applied. Plain data: nothing here
reads the store or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from models.enums import (
    Agency,
    Anchor,
    CasePath,
    CaseStatus,
    Category,
    Interface,
    ReviewRoute,
    Stage,
    StepState,
)
from models.rules import CaseFacts

if TYPE_CHECKING:
    from models.effects import Effect


@dataclass(frozen=True, slots=True)
class ItemState:
    """One dated obligation of a case: a step of the procedure, or one agency's (or one action's)
    part of it. `subject` is empty for a case's only item of its kind."""

    step: str
    subject: str
    process: str
    title: str
    state: StepState
    anchor: Anchor
    anchor_on: date
    due: date
    rule: str
    completed_on: date | None = None
    completed_by: str | None = None
    completed_via: Interface | None = None
    overdue: bool = False
    # The agency the item is owed by (its information, its IMR, its action), if any.
    agency: Agency | None = None
    # Structured values of its record: a reference, a recommendation, the sections an IMR lacks.
    # Never free text or names: those are in the store's records only (`models.forms.STORE_ONLY`).
    details: Mapping[str, Any] = field(default_factory=dict)
    # Its due date is one a person gave when it opened, not counted from its anchor: it stays when
    # the anchor moves (`models.procedure.move_anchor`).
    due_set_by_person: bool = False

    @property
    def is_open(self) -> bool:
        return self.state is StepState.OPEN

    @property
    def label(self) -> str:
        """How a person names it: the step id, and the subject after a colon."""
        return f"{self.step}:{self.subject}" if self.subject else self.step

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "subject": self.subject or None, "title": self.title,
            "due": self.due.isoformat(), "state": self.state.value, "rule": self.rule,
            "overdue": self.overdue,
            "completed_on": self.completed_on.isoformat() if self.completed_on else None,
            "completed_by": self.completed_by,
            "agency": self.agency.value if self.agency else None,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class MeetingState:
    """The Rapid Review meeting as last arranged: when, for how long, where, and how many times the
    invitation has been updated."""

    starts_at: datetime
    minutes: int
    place: str
    sequence: int

    def as_json(self) -> dict[str, Any]:
        return {"starts_at": self.starts_at.isoformat(), "minutes": self.minutes, "place": self.place,
                "sequence": self.sequence}


@dataclass(frozen=True, slots=True)
class DecisionSummary:
    """The DSPs' decision as far as the procedure needs it (the rationale stays in the store)."""

    sin: bool
    rapid_review: bool
    recorded_by: str
    # Where it was recorded: a refused conflicting decision says so, rather than who (a name must
    # not reach Prefect, where a dashboard refusal is shown).
    recorded_via: Interface | None = None


@dataclass(frozen=True, slots=True)
class CaseState:
    case_ref: str
    status: CaseStatus
    path: CasePath | None
    category: Category
    facts: CaseFacts
    referred_at: datetime
    # The dates of the case its clocks count from, by anchor (`models.anchors`): the procedure's
    # and any a process declares, as far as the case has reached them.
    anchors: Mapping[Anchor, date]
    steps: tuple[ItemState, ...]
    agencies: tuple[Agency, ...] = ()
    # The processes the case has started, each with its flow run's id once Prefect has one.
    runs: Mapping[str, str | None] = field(default_factory=dict)
    decision: DecisionSummary | None = None
    # How many forms of each kind (a step id or an act name) the store has recorded for the case.
    record_counts: Mapping[str, int] = field(default_factory=dict)
    meeting: MeetingState | None = None
    review: ReviewRoute | None = None

    # -- reading --------------------------------------------------------------------------------

    @property
    def referred_on(self) -> date:
        return self.anchors[Anchor.REFERRAL_RECEIVED]

    @property
    def agencies_total(self) -> int:
        return len(self.agencies)

    def done(self, step: str, subject: str = "") -> bool:
        return self.state_of(step, subject) is StepState.DONE

    def item(self, step: str, subject: str = "") -> ItemState | None:
        return next((i for i in self.steps if i.step == step and i.subject == subject), None)

    def items_of(self, step: str) -> list[ItemState]:
        return [i for i in self.steps if i.step == step]

    def state_of(self, step: str, subject: str = "") -> StepState | None:
        found = self.item(step, subject)
        return found.state if found is not None else None

    def open_steps(self) -> list[ItemState]:
        return [i for i in self.steps if i.is_open]

    @property
    def decided(self) -> bool:
        return self.decision is not None or self.path is not None

    def started(self, process: str) -> bool:
        return process in self.runs

    def as_json(self, *, stage: Stage) -> dict[str, Any]:
        """The case as JSON, with its stage (`Registry.stage_of`: where it stands depends on which
        processes the registry says are stages)."""
        return {
            "case_ref": self.case_ref, "status": self.status.value, "stage": stage.value,
            "path": self.path.value if self.path else None, "category": self.category.value,
            "review": self.review.value if self.review else None,
            "referred_on": self.referred_on.isoformat(),
            "anchors": {anchor.value: on.isoformat() for anchor, on in self.anchors.items()},
            "meeting": self.meeting.as_json() if self.meeting else None,
            "steps": [item.as_json() for item in self.steps],
        }

    # -- what the procedure's effects would make of it --------------------------------------------

    def after(self, effects: Iterable[Effect]) -> CaseState:
        """The case as it would stand once `effects` are applied: how the procedure sees the
        consequences of its own answer (a process to start, the case to close) before the store
        writes anything."""
        state = self
        for effect in effects:
            state = state._after_one(effect)
        return state

    def _after_one(self, effect: Effect) -> CaseState:
        # Imported here: `sbu status` reads cases through this module and never applies effects.
        from models.effects import (
            ArrangeMeeting,
            CancelItem,
            CloseCase,
            CompleteItem,
            MoveAnchor,
            OpenItem,
            RetimeItem,
            SetAnchor,
            SetPath,
            SetReview,
            SetStatus,
            StartProcess,
            StoreDecision,
            StoreRecord,
            UpdateItem,
        )

        match effect:
            case OpenItem():
                if self.item(effect.step, effect.subject) is not None:
                    return self
                return replace(self, steps=(*self.steps, ItemState(
                    step=effect.step, subject=effect.subject, process=effect.process, title=effect.title,
                    state=StepState.OPEN, anchor=effect.anchor, anchor_on=effect.anchor_on,
                    due=effect.due, rule=effect.rule, agency=effect.agency,
                    due_set_by_person=effect.due_set_by_person)))
            case CompleteItem():
                return self._with_item(effect.step, effect.subject, state=StepState.DONE,
                                       completed_on=effect.completed_on, details=dict(effect.details))
            case UpdateItem():
                return self._with_item(effect.step, effect.subject, details=dict(effect.details))
            case CancelItem():
                return self._with_item(effect.step, effect.subject, state=StepState.CANCELLED)
            case RetimeItem():
                return self._with_item(effect.step, effect.subject, due=effect.due, rule=effect.rule,
                                       anchor_on=effect.anchor_on or self._anchor_on(effect.step,
                                                                                  effect.subject))
            case SetAnchor() | MoveAnchor():
                return replace(self, anchors={**self.anchors, effect.anchor: effect.on})
            case SetPath():
                return replace(self, path=effect.path)
            case SetStatus():
                return replace(self, status=effect.status)
            case CloseCase():
                return replace(self, status=CaseStatus.CLOSED)
            case StoreDecision():
                return replace(self, decision=DecisionSummary(effect.sin, effect.rapid_review, ""))
            case StoreRecord():
                counts = {**self.record_counts, effect.kind: self.record_counts.get(effect.kind, 0) + 1}
                return replace(self, record_counts=counts)
            case ArrangeMeeting():
                return replace(self, meeting=MeetingState(effect.starts_at, effect.minutes, effect.place,
                                                          effect.sequence))
            case SetReview():
                return replace(self, review=effect.route)
            case StartProcess():
                return replace(self, runs={**self.runs, effect.process: self.runs.get(effect.process)})
        # Timers, emails and audit-only effects leave the case as it is.
        return self

    def _anchor_on(self, step: str, subject: str) -> date:
        item = self.item(step, subject)
        assert item is not None
        return item.anchor_on

    def _with_item(self, step: str, subject: str, **changes: Any) -> CaseState:
        return replace(self, steps=tuple(
            replace(item, **changes) if item.step == step and item.subject == subject else item
            for item in self.steps))
