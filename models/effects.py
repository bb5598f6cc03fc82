"""What happens to a case, and what follows from it: the events the procedure is told of and the
effects it answers with (`models.procedure`).

An event is something that happened (a referral stored, a step recorded, a timer come due, a date
moved). An effect is one change the case store makes in the same transaction: an item opened,
completed, cancelled or re-timed, an anchor date set, an email queued, a process started, the case
closed. Effects are plain data, so the procedure that chooses them does no I/O, and the store that
applies them (`tasks.service`) holds no rule.

Emails are effects too, chosen here by type (a `MailRequest`) and built elsewhere, by the builder
of that type (`tasks.mail.drafts`), from structured values only: a rule, a date, a role, an agency,
a path; never free text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from models.enums import Agency, Anchor, CasePath, CaseStatus, ReviewRoute, Role, RunLoss, TimerKind

if TYPE_CHECKING:
    # Types only: `sbu status` reads cases through `models.state`, which should not pay for the
    # timetable's models or pydantic.
    from pydantic import BaseModel

    from models.timetable import StepRule

# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Referred:
    """The case has just been stored from a referral: its first processes start."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """A person recorded a step (or part of one) with the step's form."""

    step: str
    form: BaseModel


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A deadline timer of an item has come due."""

    step: str
    subject: str
    kind: TimerKind
    sequence: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class Retimed:
    """A person set a new due date for an open item, with a reason (e.g. the panel set the IMR
    date)."""

    step: str
    subject: str
    due: date
    reason: str


@dataclass(frozen=True, slots=True)
class AnchorMoved:
    """A person moved an anchor date, with a reason (e.g. the planned publication date): every open
    item counted from it is re-timed by its own clock."""

    anchor: Anchor
    on: date
    reason: str


@dataclass(frozen=True, slots=True)
class Acted:
    """A person did one of the registry's acts (`models.registry.Act`) with its form."""

    act: str
    form: BaseModel


Event = Referred | Recorded | Acted | TimerFired | Retimed | AnchorMoved


# -- emails ----------------------------------------------------------------------------------------


class MailRequest:
    """An email the procedure asks for, by type: its fields are what the email says (structured
    values only). Each concrete type has exactly one builder, found by its type
    (`tasks.mail.drafts.builds`); a process may declare its own type, with its builder and its
    templates in its own package. A type whose name starts with `_` is a base for others."""

    __slots__ = ()
    # Every concrete type defined so far, by module and name: a dataclass with slots is made
    # twice, and the second (the one used) replaces the first here.
    _defined: ClassVar[dict[str, type[MailRequest]]] = {}

    def __init_subclass__(cls, **options: Any) -> None:
        super().__init_subclass__(**options)
        if not cls.__name__.startswith("_"):
            MailRequest._defined[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @staticmethod
    def defined() -> tuple[type[MailRequest], ...]:
        """Every concrete mail request type defined so far: the procedure's, and those of the
        processes imported."""
        return tuple(MailRequest._defined.values())


@dataclass(frozen=True, slots=True)
class ReferralReceivedMail(MailRequest):
    due_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecordedMail(MailRequest):
    path: CasePath


@dataclass(frozen=True, slots=True)
class _ToOwner(MailRequest):
    """An email about one item, to its owner: a role, or the agency the item is owed by."""

    rule: StepRule
    due: date
    owner: Role | Agency
    subject: str = ""


@dataclass(frozen=True, slots=True)
class StepOpenedMail(_ToOwner):
    pass


@dataclass(frozen=True, slots=True)
class ReminderMail(_ToOwner):
    pass


@dataclass(frozen=True, slots=True)
class OverdueMail(_ToOwner):
    pass


@dataclass(frozen=True, slots=True)
class EscalationMail(MailRequest):
    rule: StepRule
    due: date
    on: date
    subject: str = ""


@dataclass(frozen=True, slots=True)
class InformationRequestMail(MailRequest):
    agency: Agency
    due: date


@dataclass(frozen=True, slots=True)
class MeetingInvitationMail(MailRequest):
    """The Rapid Review meeting's invitation (sequence 0) or an update to it (sequence 1, 2, ...),
    to the DSPs and every involved agency."""

    starts_at: datetime
    minutes: int
    place: str
    sequence: int
    agencies: tuple[Agency, ...]


@dataclass(frozen=True, slots=True)
class CsprCommissionedMail(MailRequest):
    commissioned_on: date
    publication_target: date
    by_panel: bool


@dataclass(frozen=True, slots=True)
class ImrRequestMail(MailRequest):
    agency: Agency
    due: date
    sections: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImrIncompleteMail(MailRequest):
    agency: Agency
    due: date
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActionAssignedMail(MailRequest):
    action: str
    agency: Agency
    due: date


@dataclass(frozen=True, slots=True)
class CaseClosedMail(MailRequest):
    closed_on: date


@dataclass(frozen=True, slots=True)
class RunRepairedMail(MailRequest):
    """To the SBU: Prefect had lost or given up on a run of `process` (`replaced`, its id), and a
    new run replaced it. Ids and the process name only: nothing about the case's people."""

    process: str
    loss: RunLoss
    replaced: str


@dataclass(frozen=True, slots=True)
class LateStep:
    """An open step of a case already past its due date: which, due when, and how many working
    days late."""

    case_ref: str
    step: str
    subject: str
    title: str
    due: date
    days_late: int


@dataclass(frozen=True, slots=True)
class ImportSummaryMail(MailRequest):
    """To the SBU, once for a whole import of open cases (`sbu import`): how many cases came in,
    and each step still open and already late, by case reference and step only. The history
    itself is alerted for nothing; this is the one email an import sends. `file_sha256` names the
    file, so the same file imported again sends no second summary."""

    imported: int
    late: tuple[LateStep, ...]
    on: date
    file_sha256: str


# -- effects ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenItem:
    step: str
    subject: str
    process: str
    title: str
    anchor: Anchor
    anchor_on: date
    due: date
    rule: str
    # The agency the item is owed by (its information, its IMR, its action), if any.
    agency: Agency | None = None
    # Its due date is one a person gave (the panel's date for the IMRs, an action's), not counted
    # from its anchor: it stays when the anchor moves.
    due_set_by_person: bool = False

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "step-opened", _with_subject({"step": self.step, "due": self.due.isoformat()}, self.subject)


@dataclass(frozen=True, slots=True)
class CompleteItem:
    step: str
    subject: str
    completed_on: date
    late: bool
    # Structured values of the record (a reference, the decision's two answers), kept on the item.
    details: Mapping[str, Any] = field(default_factory=dict)

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "step-completed", _with_subject(
            {"step": self.step, "on": self.completed_on.isoformat(), "late": self.late}, self.subject)


@dataclass(frozen=True, slots=True)
class UpdateItem:
    """An open item's structured details changed (an IMR received with sections missing)."""

    step: str
    subject: str
    details: Mapping[str, Any]
    action: str

    def audit(self) -> tuple[str, dict[str, Any]]:
        return self.action, _with_subject({"step": self.step, **self.details}, self.subject)


@dataclass(frozen=True, slots=True)
class CancelItem:
    step: str
    subject: str

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "step-cancelled", _with_subject({"step": self.step}, self.subject)


@dataclass(frozen=True, slots=True)
class RetimeItem:
    step: str
    subject: str
    due: date
    was: date
    rule: str
    reason: str
    # Set when the item follows a moved anchor date.
    anchor_on: date | None = None

    def audit(self) -> tuple[str, dict[str, Any]]:
        # The reason is the person's own words: kept in the store's audit trail, and nowhere else.
        return "step-retimed", _with_subject(
            {"step": self.step, "due": self.due.isoformat(), "was": self.was.isoformat(),
             "reason": self.reason}, self.subject)


@dataclass(frozen=True, slots=True)
class ScheduleAlert:
    """A durable timer for an open item: a reminder, an overdue alert or an escalation."""

    step: str
    subject: str
    due: date
    kind: TimerKind
    sequence: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class CancelAlerts:
    """Every timer still scheduled for the item."""

    step: str
    subject: str


@dataclass(frozen=True, slots=True)
class AlertSent:
    step: str
    subject: str
    kind: TimerKind
    due: date
    sequence: int

    def audit(self) -> tuple[str, dict[str, Any]]:
        return f"{self.kind.value}-sent", _with_subject(
            {"step": self.step, "due": self.due.isoformat(), "sequence": self.sequence}, self.subject)


@dataclass(frozen=True, slots=True)
class SetAnchor:
    anchor: Anchor
    on: date


@dataclass(frozen=True, slots=True)
class MoveAnchor:
    """A person's correction of an anchor date (`SetAnchor` is the procedure's own)."""

    anchor: Anchor
    on: date
    was: date | None
    reason: str

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "anchor-moved", {"anchor": self.anchor.value, "on": self.on.isoformat(),
                                "was": self.was.isoformat() if self.was else None, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SetPath:
    path: CasePath


@dataclass(frozen=True, slots=True)
class SetStatus:
    status: CaseStatus


@dataclass(frozen=True, slots=True)
class StoreDecision:
    """The DSPs' decision as recorded, free text included: it lives in the case store only."""

    sin: bool
    rapid_review: bool
    path: CasePath
    rationale: str
    # (role, name, deputy) for each of the three DSP roles.
    sign_off: tuple[tuple[Role, str, bool], ...]
    decided_on: date

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "dsp-decision-recorded", {"sin": self.sin, "rapid_review": self.rapid_review,
                                         "path": self.path.value}


@dataclass(frozen=True, slots=True)
class StoreRecord:
    """A form as a person submitted it, free text and names included, kept in the case store's
    `records` (and nowhere else): what was recorded, by whom and when, in full."""

    kind: str
    process: str
    subject: str
    values: Mapping[str, Any]

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "form-recorded", _with_subject({"form": self.kind}, self.subject)


@dataclass(frozen=True, slots=True)
class ArrangeMeeting:
    """The Rapid Review meeting set (sequence 0) or moved (1, 2, ...): its time and place."""

    starts_at: datetime
    minutes: int
    place: str
    sequence: int
    reason: str = ""

    def audit(self) -> tuple[str, dict[str, Any]]:
        # The place goes out in the invitation; the reason is a person's words, kept here only.
        detail: dict[str, Any] = {"starts_at": self.starts_at.isoformat(), "sequence": self.sequence}
        if self.reason:
            detail["reason"] = self.reason
        return ("meeting-moved" if self.sequence else "meeting-arranged"), detail


@dataclass(frozen=True, slots=True)
class SetReview:
    """The route of the case's review: the Rapid Review's recommendation, or what the Panel made of it."""

    route: ReviewRoute

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "review-route-set", {"route": self.route.value}


@dataclass(frozen=True, slots=True)
class StartProcess:
    """The case now runs this process: the store keeps a row for its flow run, which Prefect is
    then told to create (`tasks.prefect`)."""

    process: str


@dataclass(frozen=True, slots=True)
class CloseCase:
    reason: str

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "case-closed", {"reason": self.reason}


@dataclass(frozen=True, slots=True)
class RepairRun:
    """The case store and Prefect disagreed: the store needs a run of `process` that Prefect lost
    (`loss`). The store now points at the new run; the old one is kept in the audit trail."""

    process: str
    loss: RunLoss
    replaced: str
    replacement: str

    def audit(self) -> tuple[str, dict[str, Any]]:
        return "run-repaired", {"process": self.process, "loss": self.loss.value,
                                "replaced": self.replaced, "replacement": self.replacement}


@dataclass(frozen=True, slots=True)
class SendEmail:
    mail: MailRequest


Effect = (OpenItem | CompleteItem | UpdateItem | CancelItem | RetimeItem | ScheduleAlert | CancelAlerts
          | AlertSent | SetAnchor | MoveAnchor | SetPath | SetStatus | StoreDecision | StoreRecord
          | ArrangeMeeting | SetReview | StartProcess | RepairRun | CloseCase | SendEmail)


def audit_of(effect: Effect) -> tuple[str, dict[str, Any]] | None:
    """The audit event an effect writes, or None for bookkeeping that follows from another effect
    (a timer follows from its item, an email from the change that caused it)."""
    audit = getattr(effect, "audit", None)
    return audit() if audit is not None else None


def _with_subject(detail: dict[str, Any], subject: str) -> dict[str, Any]:
    return {**detail, "subject": subject} if subject else detail
